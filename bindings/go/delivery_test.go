package enrich_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"example.invalid/libenrich/enrich"
)

const deliveryDay = "year=2024/month=01/day=15"

// badKeyEvent has an object as its key (outcome ERROR) and its timestamp.
const badKeyEvent = `{"eventId":"evt-004","productId":{"x":1},"timestamp":"2024-01-15T10:33:00Z"}`

// objectsUnder lists the visible files below dir (no dot files), sorted.
func objectsUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() && !strings.HasPrefix(fi.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// gunzipLines reads the records of gzip NDJSON objects.
func gunzipLines(t *testing.T, paths []string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("%s: not newline-terminated: %q", p, b)
		}
		out = append(out, strings.Split(string(b[:len(b)-1]), "\n")...)
	}
	return out
}

func TestDeliverySeedObjects(t *testing.T) {
	_, p := seedPipeline(t)
	root := filepath.Join(t.TempDir(), "lake")
	d, err := p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.ResumeOffset() != 0 {
		t.Fatalf("resume offset %d", d.ResumeOffset())
	}
	batch := append(seedEvents(t), badKeyEvent+"\n"...)
	if err := d.Run(enrich.InputNDJSON, batch, 4); err != nil {
		t.Fatal(err)
	}
	m, err := d.Metrics(false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Batches != 1 || m.EventsIn != 4 || m.InSuccess != 2 || m.InNotFound != 1 ||
		m.InError != 1 || m.OutDeadLetter != 0 || m.BatchLatencyUs.Count != 1 {
		t.Errorf("metrics before close: %+v", m)
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(false); err != nil { // harmless
		t.Fatal(err)
	}
	if err := d.Run(enrich.InputNDJSON, batch, 5); !errors.Is(err, enrich.ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}

	data := objectsUnder(t, filepath.Join(root, "enriched-data", deliveryDay))
	if len(data) != 1 || !strings.HasPrefix(filepath.Base(data[0]), "enrich-1-") ||
		!strings.HasSuffix(data[0], ".gz") {
		t.Fatalf("data objects %v", data)
	}
	if got := gunzipLines(t, data); strings.Join(got, "\n") != strings.Join(seedEnriched, "\n") {
		t.Fatalf("data records:\n%s", strings.Join(got, "\n"))
	}
	errs := objectsUnder(t, filepath.Join(root, "error-data", "processing-failed", deliveryDay))
	if len(errs) != 1 {
		t.Fatalf("error objects %v (all: %v)", errs, objectsUnder(t, root))
	}
	lines := gunzipLines(t, errs)
	var rec map[string]interface{}
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil ||
		rec["eventId"] != "evt-004" || rec["enrichmentError"] == nil {
		t.Fatalf("error records %q", lines)
	}
	if all := objectsUnder(t, root); len(all) != 4 { // + _delivery/enrich.{state.json,lock}
		t.Fatalf("files %v", all)
	}
	var state struct {
		Acked uint64 `json:"acked_offset"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(root, "_delivery", "enrich.state.json")), &state); err != nil || state.Acked != 4 {
		t.Fatalf("state %+v %v", state, err)
	}

	// Resume: the state's offset comes back.
	d, err = p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.ResumeOffset() != 4 || d.InputEnd() != 4 {
		t.Fatalf("resume %d, input end %d", d.ResumeOffset(), d.InputEnd())
	}
	if err := d.Run(enrich.InputNDJSON, seedEvents(t), 7); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(true); err != nil { // discarded: nothing new
		t.Fatal(err)
	}
	if n := len(objectsUnder(t, filepath.Join(root, "enriched-data"))); n != 1 {
		t.Fatalf("%d data objects after a discard", n)
	}
}

func TestDeliveryWriteFlushMetrics(t *testing.T) {
	_, p := seedPipeline(t)
	root := t.TempDir()
	d, err := p.OpenDelivery(root, []byte(`{"stream_name":"s1","metrics_namespace":"go-test"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(false)
	c, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(enrich.InputNDJSON, seedEvents(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(c, 10); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(c, 5); !errors.Is(err, enrich.ErrInvalid) {
		t.Fatalf("input end going back: %v", err)
	}
	if err := d.Flush(enrich.FlushAll); err != nil {
		t.Fatal(err)
	}
	m, err := d.Metrics(true)
	if err != nil {
		t.Fatal(err)
	}
	if m.OutData != 3 || m.Objects != 1 || m.BytesOut == 0 || m.StateWrites == 0 {
		t.Errorf("metrics %+v", m)
	}
	if m, _ := d.Metrics(false); m.EventsIn != 0 {
		t.Errorf("not reset: %+v", m)
	}
	emf, err := d.MetricsEMF(false)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]interface{}
	if err := json.Unmarshal(emf, &e); err != nil || e["DeliveryStream"] != "s1" ||
		!bytes.Contains(emf, []byte(`"go-test"`)) {
		t.Fatalf("EMF %s (%v)", emf, err)
	}
	objs := objectsUnder(t, filepath.Join(root, "enriched-data", deliveryDay))
	if got := gunzipLines(t, objs); len(got) != 3 || !strings.HasPrefix(filepath.Base(objs[0]), "s1-1-") {
		t.Fatalf("%v: %q", objs, got)
	}
	// A context of another pipeline is refused.
	_, p2 := seedPipeline(t)
	c2, err := p2.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(c2, 11); !errors.Is(err, enrich.ErrInvalid) {
		t.Fatalf("foreign context: %v", err)
	}
}

func TestDeliveryErrors(t *testing.T) {
	_, p := seedPipeline(t)
	root := t.TempDir()
	_, err := p.OpenDelivery(root, []byte(`{"bogus":1}`))
	var e *enrich.Error
	if !errors.Is(err, enrich.ErrInvalid) || !errors.As(err, &e) ||
		e.Name != "ENRICH_E_INVALID" || !strings.Contains(e.Detail, `unknown member "bogus"`) {
		t.Fatalf("bad config: %v", err)
	}
	d, err := p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.OpenDelivery(root, nil); !errors.Is(err, enrich.ErrIO) ||
		!strings.Contains(err.Error(), "another delivery") {
		t.Fatalf("second open: %v", err)
	}
	// A malformed batch: the detail is the context's.
	err = d.Run(enrich.InputJSONArray, []byte("[1,"), 1)
	if !errors.Is(err, enrich.ErrJSON) || !errors.As(err, &e) || e.Detail == "" {
		t.Fatalf("bad batch: %#v", err)
	}
	// Closing the pipeline closes (and publishes) the delivery.
	if err := d.Run(enrich.InputNDJSON, seedEvents(t), 2); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.FlushNow(); !errors.Is(err, enrich.ErrClosed) {
		t.Fatalf("flush after pipeline close: %v", err)
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.OpenDelivery(root, nil); !errors.Is(err, enrich.ErrClosed) {
		t.Fatalf("open on a closed pipeline: %v", err)
	}
	if n := len(objectsUnder(t, filepath.Join(root, "enriched-data"))); n != 1 {
		t.Fatalf("%d data objects", n)
	}
}

// Calls are serialized: goroutines may share one delivery (go test -race).
func TestDeliveryConcurrentCalls(t *testing.T) {
	_, p := seedPipeline(t)
	root := t.TempDir()
	d, err := p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := seedEvents(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := uint64(0)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				mu.Lock() // the caller keeps input ends in order
				next++
				err := d.Run(enrich.InputNDJSON, events, next)
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := d.Metrics(false); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if got := gunzipLines(t, objectsUnder(t, filepath.Join(root, "enriched-data"))); len(got) != 120 {
		t.Fatalf("%d records", len(got))
	}
}
