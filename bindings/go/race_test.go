package enrich_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.invalid/libenrich/enrich"
)

// The concurrency tests: many goroutines enrich against one store while a
// writer updates it. Version v of the reference table writes every one of
// nItems items as {"productId":"P%03d","ver":v,"tag":"v<v>-P%03d"}: an even
// v in one Load (one transaction), an odd v as one Put per item, in item
// order. Each batch holds every product once, shuffled. A batch reads one
// snapshot, so its versions, ordered by item, must be one of the states
// the writer passed through: all equal, or (during a Put sweep, odd max)
// a prefix at max and the rest at max-1. Each record's tag must match its
// ver, and a goroutine never sees an item go back in time.

const nItems = 40

// allFields attaches every member of an item (ver and tag here); the seed
// rules attach only productName, category and price.
var allFields = []byte(`{"lookups":[{"key":"productId","table":"products"}]}`)

func versionItems(v int) []byte {
	var b bytes.Buffer
	for i := 0; i < nItems; i++ {
		fmt.Fprintf(&b, "{\"productId\":\"P%03d\",\"ver\":%d,\"tag\":\"v%d-P%03d\"}\n", i, v, v, i)
	}
	return b.Bytes()
}

func writeVersion(s *enrich.Store, v int) error {
	if v%2 == 0 {
		n, err := s.Load("products", versionItems(v), enrich.LoadOptions{Key: "productId"})
		if err == nil && n != nItems {
			err = fmt.Errorf("loaded %d", n)
		}
		return err
	}
	for i := 0; i < nItems; i++ {
		item := fmt.Sprintf(`{"productId":"P%03d","ver":%d,"tag":"v%d-P%03d"}`, i, v, v, i)
		if err := s.Put("products", []byte(item)); err != nil {
			return err
		}
	}
	return nil
}

// checker verifies the batches of one goroutine.
type checker struct {
	last [nItems]int
	rnd  *rand.Rand
}

func (c *checker) batch() []byte {
	var b bytes.Buffer
	for _, i := range c.rnd.Perm(nItems) {
		fmt.Fprintf(&b, "{\"eventId\":\"e%d\",\"productId\":\"P%03d\"}\n", i, i)
	}
	return b.Bytes()
}

func (c *checker) check(b *enrich.Batch) error {
	if len(b.Records) != nItems {
		return fmt.Errorf("%d records", len(b.Records))
	}
	var vers [nItems]int
	for _, r := range b.Records {
		var ev struct {
			ProductID string `json:"productId"`
			Ver       int    `json:"ver"`
			Tag       string `json:"tag"`
			Status    string `json:"enrichmentStatus"`
		}
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			return fmt.Errorf("%v: %s", err, r.Data)
		}
		if r.Outcome != enrich.OutcomeSuccess || ev.Status != "success" ||
			ev.Tag != fmt.Sprintf("v%d-%s", ev.Ver, ev.ProductID) {
			return fmt.Errorf("torn record: %s", r.Data)
		}
		i, _ := strconv.Atoi(ev.ProductID[1:])
		vers[i] = ev.Ver
	}
	max, min := vers[0], vers[nItems-1]
	for i := 1; i < nItems; i++ {
		if vers[i] > vers[i-1] {
			return fmt.Errorf("not a snapshot: versions %v", vers)
		}
	}
	if max != min && (max-min != 1 || max%2 == 0) {
		return fmt.Errorf("not a snapshot: versions %v", vers)
	}
	for i, v := range vers {
		if v < c.last[i] {
			return fmt.Errorf("item %d went back from v%d to v%d", i, c.last[i], v)
		}
		c.last[i] = v
	}
	return nil
}

// enrichers runs n goroutines enriching until stop is closed; returns the
// number of batches and the first error.
func enrichers(p *enrich.Pipeline, n int, stop chan struct{}) (int64, error) {
	var wg sync.WaitGroup
	var batches int64
	var once sync.Once
	var first error
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := &checker{rnd: rand.New(rand.NewSource(int64(g)))}
			for k := 0; ; k++ {
				select {
				case <-stop:
					if k > 0 {
						return
					}
				default:
				}
				enc := []enrich.Encoding{enrich.EncodeNDJSON, enrich.EncodeJSONArray, enrich.EncodeNone}[k%3]
				b, err := p.Enrich(enrich.InputNDJSON, c.batch(), enc)
				if err == nil {
					err = c.check(b)
				}
				if err != nil {
					once.Do(func() { first = fmt.Errorf("goroutine %d batch %d: %v", g, k, err) })
					return
				}
				atomic.AddInt64(&batches, 1)
			}
		}(g)
	}
	wg.Wait()
	return batches, first
}

func testDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ENRICH_GO_STRESS")); err == nil {
		return d
	}
	return 2 * time.Second
}

// In one process: one read-write store shared by the writer goroutine and
// the enrichers (LMDB forbids opening one environment twice in a process,
// so this is the in-process pattern).
func TestConcurrentEnrichWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := writeVersion(s, 0); err != nil {
		t.Fatal(err)
	}
	p, err := s.Compile(allFields, enrich.MaxContexts(6))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	werr := make(chan error, 1)
	var versions int
	go func() {
		deadline := time.Now().Add(testDuration())
		v := 1
		// At least a few versions whatever the machine's load: the test
		// needs writes overlapping the enrichers, not a fixed time.
		for ; v < 4 || time.Now().Before(deadline); v++ {
			if err := writeVersion(s, v); err != nil {
				werr <- err
				close(stop)
				return
			}
		}
		versions = v
		close(stop)
		werr <- nil
	}()
	batches, err := enrichers(p, 16, stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	t.Logf("16 goroutines, 6 contexts: %d batches of %d events consistent while %d versions were written",
		batches, nItems, versions)
	if versions < 3 || batches < 16 {
		t.Fatalf("too little overlap: %d versions, %d batches", versions, batches)
	}
}

// Across processes: the writer is this test binary run again with
// ENRICH_GO_WRITER set; it opens its own read-write handle of the store
// the enrichers read through a read-only one.
func TestConcurrentEnrichWhileAnotherProcessWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	err = writeVersion(s, 0)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := enrich.Open(path, enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	p, err := ro.Compile(allFields)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "ENRICH_GO_WRITER="+path, "ENRICH_GO_STRESS="+testDuration().String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait(); close(stop) }()
	batches, err := enrichers(p, 16, stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v\n%s", err, out.Bytes())
	}
	t.Logf("16 goroutines: %d batches consistent while another process wrote (%s)", batches,
		bytes.TrimSpace(out.Bytes()))
}

// TestWriterProcess is the writer of the test above (skipped otherwise).
func TestWriterProcess(t *testing.T) {
	path := os.Getenv("ENRICH_GO_WRITER")
	if path == "" {
		t.Skip("the writer process of TestConcurrentEnrichWhileAnotherProcessWrites")
	}
	s, err := enrich.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(testDuration())
	v := 1
	for ; time.Now().Before(deadline); v++ {
		if err := writeVersion(s, v); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("writer: %d versions\n", v)
}

// The checker itself rejects what it must.
func TestCheckerRejectsTornBatches(t *testing.T) {
	mk := func(vers func(i int) int) *enrich.Batch {
		b := &enrich.Batch{}
		for i := 0; i < nItems; i++ {
			v := vers(i)
			b.Records = append(b.Records, enrich.Record{Data: []byte(fmt.Sprintf(
				`{"productId":"P%03d","ver":%d,"tag":"v%d-P%03d","enrichmentStatus":"success"}`, i, v, v, i))})
		}
		return b
	}
	good := []func(int) int{
		func(i int) int { return 4 },
		func(i int) int {
			if i < 10 {
				return 5
			}
			return 4
		},
	}
	bad := []func(int) int{
		func(i int) int {
			if i < 10 {
				return 6
			}
			return 5
		}, // a Load is atomic
		func(i int) int {
			if i < 10 {
				return 4
			}
			return 5
		}, // not a prefix
		func(i int) int {
			if i < 10 {
				return 7
			}
			return 5
		}, // two versions apart
	}
	for k, f := range good {
		if err := (&checker{}).check(mk(f)); err != nil {
			t.Errorf("good %d: %v", k, err)
		}
	}
	for k, f := range bad {
		if err := (&checker{}).check(mk(f)); err == nil {
			t.Errorf("bad %d accepted", k)
		}
	}
	c := &checker{}
	c.check(mk(good[0]))
	if err := c.check(mk(func(int) int { return 2 })); err == nil {
		t.Error("going back in time accepted")
	}
}
