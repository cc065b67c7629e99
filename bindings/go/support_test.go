package enrich_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"example.invalid/libenrich/enrich"
)

// fixedClock is 2024-02-01T00:00:00.000Z, as in tests/check_enrich.c.
const fixedClock = 1706745600000

func srcdir(t testing.TB) string {
	if d := os.Getenv("ENRICH_SRCDIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seedEvents(t testing.TB) []byte {
	return readFile(t, filepath.Join(srcdir(t), "examples", "seed-events.ndjson"))
}

func seedEventLines(t testing.TB) []string {
	return strings.Split(strings.TrimRight(string(seedEvents(t)), "\n"), "\n")
}

// seedEnriched: the seed's events enriched with the seed rules at fixedClock.
var seedEnriched = []string{
	`{"eventId":"evt-001","productId":"PROD-001","quantity":5,"timestamp":"2024-01-15T10:30:00Z",` +
		`"productName":"Smart Sensor","category":"IoT Devices","price":49.99,` +
		`"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}`,
	`{"eventId":"evt-002","productId":"PROD-002","quantity":3,"timestamp":"2024-01-15T10:31:00Z",` +
		`"productName":"Temperature Monitor","category":"IoT Devices","price":79.99,` +
		`"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}`,
	`{"eventId":"evt-003","productId":"PROD-999","quantity":1,"timestamp":"2024-01-15T10:32:00Z",` +
		`"enrichmentStatus":"product_not_found"}`,
}

// seedStore makes a store holding the seed's products table and returns its path.
func seedStore(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seed.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items := readFile(t, filepath.Join(srcdir(t), "examples", "seed-products.ddb.jsonl"))
	n, err := s.Load("products", items, enrich.LoadOptions{Key: "productId", Format: enrich.LoadDynamoDB})
	if err != nil || n != 2 {
		t.Fatalf("load: %d, %v", n, err)
	}
	return path
}

// seedPipeline opens the seed store read-only with the seed rules at fixedClock.
func seedPipeline(t testing.TB, opts ...enrich.Option) (*enrich.Store, *enrich.Pipeline) {
	t.Helper()
	s, err := enrich.Open(seedStore(t), enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := s.Compile(nil, append([]enrich.Option{enrich.ClockMs(fixedClock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func underASan() bool { return os.Getenv("ENRICH_UNDER_ASAN") != "" }
