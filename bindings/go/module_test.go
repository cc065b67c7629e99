package enrich_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// docBlocks returns the fenced code blocks of docs/go.md whose first line
// is "// file: NAME", by NAME.
func docBlocks(t *testing.T) map[string]string {
	doc := string(readFile(t, filepath.Join(srcdir(t), "docs", "go.md")))
	fence := regexp.MustCompile("(?s)```[a-z]*\n// file: ([^\n]+)\n(.*?)```")
	blocks := map[string]string{}
	for _, m := range fence.FindAllStringSubmatch(doc, -1) {
		blocks[m[1]] = m[2]
	}
	return blocks
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// runIn runs a command in dir with extra environment, failing on error.
func runIn(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v in %s: %v\n%s%s", name, args, dir, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// TestModuleRecipes builds the program of docs/go.md ("Getting the module
// into your program") as a module of its own outside the tree, once with
// the replace directive and once with the go.work of that page, and runs
// it on the seed scenario: the recipes are tested as they are written.
func TestModuleRecipes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs")
	}
	blocks := docBlocks(t)
	root, err := filepath.Abs(srcdir(t))
	if err != nil {
		t.Fatal(err)
	}
	fill := func(s string) string { return strings.ReplaceAll(s, "/path/to/libenrich", root) }
	for _, name := range []string{"go.mod", "go.mod (workspace)", "go.work", "main.go"} {
		if blocks[name] == "" {
			t.Fatalf("docs/go.md has no block starting \"// file: %s\" (has %d)", name, len(blocks))
		}
	}
	layouts := []struct {
		name  string
		files map[string]string
		env   []string
	}{
		{"replace", map[string]string{"go.mod": blocks["go.mod"], "main.go": blocks["main.go"]},
			[]string{"GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off"}},
		// Workspace mode takes no -mod=mod; go finds go.work in the folder.
		{"workspace", map[string]string{"go.mod": blocks["go.mod (workspace)"],
			"go.work": blocks["go.work"], "main.go": blocks["main.go"]},
			[]string{"GOFLAGS=-buildvcs=false", "GOWORK="}},
	}
	events := readFile(t, filepath.Join(srcdir(t), "examples", "seed-events.ndjson"))
	products := filepath.Join(root, "examples", "seed-products.ddb.jsonl")
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "seedapp")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, text := range l.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(fill(text)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := append([]string{"GOPROXY=off"}, l.env...)
			runIn(t, dir, env, nil, goTool(), "build", "-o", "seedapp", ".")
			store := filepath.Join(t.TempDir(), "seed.mdb")
			// The first run makes the store (Open reports fs.ErrNotExist),
			// the second opens it.
			for run := 0; run < 2; run++ {
				out, errOut := runIn(t, dir, nil, events, filepath.Join(dir, "seedapp"), store, products)
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(lines) != 3 || !strings.Contains(lines[0], `"productName":"Smart Sensor"`) ||
					!strings.Contains(lines[1], `"enrichmentStatus":"success"`) ||
					!strings.HasSuffix(lines[2], `"enrichmentStatus":"product_not_found"}`) {
					t.Fatalf("run %d output:\n%s", run, out)
				}
				if strings.TrimSpace(errOut) != "3 events: 2 success, 1 not found" {
					t.Fatalf("run %d stderr: %q", run, errOut)
				}
			}
		})
	}
}
