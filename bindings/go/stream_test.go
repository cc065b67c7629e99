package enrich_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"example.invalid/libenrich/enrich"
)

// lineReader hands out one line per Read (so a bufio.Reader reads no
// further ahead than the line it needs) and calls onLine(k) as line k
// (0-based) is handed out.
type lineReader struct {
	lines  []string
	next   int
	onLine func(k int)
}

func (r *lineReader) Read(p []byte) (int, error) {
	if r.next >= len(r.lines) {
		return 0, io.EOF
	}
	l := r.lines[r.next]
	if len(p) < len(l) {
		panic("test lines are shorter than bufio's buffer")
	}
	if r.onLine != nil {
		r.onLine(r.next)
	}
	r.next++
	return copy(p, l), nil
}

// manyEvents: n seed events (cycling), newline-terminated, with distinct ids.
func manyEvents(t *testing.T, n int) []string {
	seed := seedEventLines(t)
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Replace(seed[i%3], `"eventId":"evt-00`, fmt.Sprintf(`"eventId":"e%d-`, i), 1) + "\n"
	}
	return out
}

func TestEnrichStreamSeed(t *testing.T) {
	_, p := seedPipeline(t)
	// Blank lines and CRLF are skipped as in a batch; the last line has
	// no newline.
	in := strings.Join(seedEventLines(t)[:2], "\n") + "\n\r\n\n" + seedEventLines(t)[2]
	for _, o := range []enrich.StreamOptions{{}, {BatchEvents: 1}, {BatchEvents: 2}, {BatchBytes: 1}} {
		var out bytes.Buffer
		var seen []int
		o.OnBatch = func(b *enrich.Batch) error { seen = append(seen, len(b.Records)); return nil }
		st, err := p.EnrichStream(context.Background(), strings.NewReader(in), &out, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimRight(out.String(), "\n"); got != strings.Join(seedEnriched, "\n") {
			t.Fatalf("%+v: output\n%s", o, got)
		}
		if st.Events != 3 || st.Bytes != int64(len(in)) || st.Outcomes != [4]int{2, 1, 0, 0} ||
			st.Batches != len(seen) {
			t.Fatalf("%+v: stats %+v, batches %v", o, st, seen)
		}
		want := map[int]int{0: 1, 1: 3, 2: 2}[o.BatchEvents]
		if o.BatchBytes == 1 {
			want = 5 // one line per batch, blank ones included
		}
		if st.Batches != want {
			t.Fatalf("%+v: %d batches (%v), want %d", o, st.Batches, seen, want)
		}
	}
}

func TestEnrichStreamLongEvent(t *testing.T) {
	_, p := seedPipeline(t)
	// An event longer than bufio's buffer (64 KiB) is read whole.
	long := `{"productId":"PROD-001","pad":"` + strings.Repeat("x", 200<<10) + `"}`
	in := long + "\n" + seedEventLines(t)[1] + "\n"
	var out bytes.Buffer
	st, err := p.EnrichStream(context.Background(), strings.NewReader(in), &out,
		enrich.StreamOptions{BatchBytes: 1000})
	if err != nil || st.Batches != 2 || st.Events != 2 || st.Outcomes[enrich.OutcomeSuccess] != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], strings.Repeat("x", 200<<10)) ||
		lines[1] != seedEnriched[1] {
		t.Fatalf("output: %d lines", len(lines))
	}
}

func TestEnrichStreamCancelMidStream(t *testing.T) {
	_, p := seedPipeline(t)
	lines := manyEvents(t, 20)
	for _, cancelAt := range []int{0, 3, 4, 5, 19} {
		ctx, cancel := context.WithCancel(context.Background())
		r := &lineReader{lines: lines, onLine: func(k int) {
			if k == cancelAt {
				cancel()
			}
		}}
		var out bytes.Buffer
		st, err := p.EnrichStream(ctx, r, &out, enrich.StreamOptions{BatchEvents: 4})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel at line %d: %v", cancelAt, err)
		}
		// The batch that was being read when the context ended is not
		// written; every batch before it is, whole.
		done := cancelAt / 4 * 4
		if st.Events != done || st.Batches != done/4 ||
			st.Bytes != int64(len(strings.Join(lines[:done], ""))) {
			t.Fatalf("cancel at line %d: stats %+v", cancelAt, st)
		}
		got := strings.Count(out.String(), "\n")
		if got != done {
			t.Fatalf("cancel at line %d: %d records written, want %d", cancelAt, got, done)
		}
		if done > 0 && !strings.Contains(out.String(), fmt.Sprintf(`"eventId":"e%d-`, done-1)) {
			t.Fatalf("cancel at line %d: last record missing", cancelAt)
		}
	}
	// Cancelled before the start: nothing is read.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &lineReader{lines: lines}
	if st, err := p.EnrichStream(ctx, r, io.Discard, enrich.StreamOptions{}); !errors.Is(err, context.Canceled) ||
		st.Batches != 0 || r.next != 0 {
		t.Fatalf("%+v %v, %d lines read", st, err, r.next)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestEnrichStreamErrors(t *testing.T) {
	_, p := seedPipeline(t)
	in := strings.Join(manyEvents(t, 10), "")
	st, err := p.EnrichStream(context.Background(), strings.NewReader(in), &failingWriter{n: 2},
		enrich.StreamOptions{BatchEvents: 3})
	if err == nil || err.Error() != "disk full" || st.Batches != 2 || st.Events != 6 {
		t.Fatalf("writer: %+v %v", st, err)
	}
	stop := errors.New("stop")
	st, err = p.EnrichStream(context.Background(), strings.NewReader(in), io.Discard,
		enrich.StreamOptions{BatchEvents: 3, OnBatch: func(b *enrich.Batch) error {
			if b.Count(enrich.OutcomeNotFound) > 0 {
				return stop
			}
			return nil
		}})
	if !errors.Is(err, stop) || st.Batches != 1 {
		t.Fatalf("OnBatch: %+v %v", st, err)
	}
	broken := io.MultiReader(strings.NewReader(in[:100]), &errReader{})
	if _, err := p.EnrichStream(context.Background(), broken, io.Discard, enrich.StreamOptions{}); err == nil ||
		err.Error() != "read failed" {
		t.Fatalf("reader: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }

func TestDeliveryRunStreamCancelAndResume(t *testing.T) {
	_, p := seedPipeline(t)
	root := filepath.Join(t.TempDir(), "lake")
	lines := manyEvents(t, 30)
	all := strings.Join(lines, "")

	d, err := p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &lineReader{lines: lines, onLine: func(k int) {
		if k == 17 {
			cancel()
		}
	}}
	st, err := d.RunStream(ctx, r, enrich.StreamOptions{BatchEvents: 5})
	if !errors.Is(err, context.Canceled) || st.Batches != 3 || st.Events != 15 {
		t.Fatalf("%+v %v", st, err)
	}
	if want := uint64(len(strings.Join(lines[:15], ""))); d.InputEnd() != want || uint64(st.Bytes) != want {
		t.Fatalf("input end %d, stats %+v, want %d", d.InputEnd(), st, want)
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}

	// A restart resumes at the acknowledged byte offset.
	d, err = p.OpenDelivery(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	off := d.ResumeOffset()
	if off != uint64(st.Bytes) {
		t.Fatalf("resume offset %d, want %d", off, st.Bytes)
	}
	st, err = d.RunStream(context.Background(), strings.NewReader(all[off:]), enrich.StreamOptions{BatchEvents: 5})
	if err != nil || st.Events != 15 || d.InputEnd() != uint64(len(all)) {
		t.Fatalf("%+v %v, input end %d", st, err, d.InputEnd())
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	// Every event exactly once in the lake (not_found records included).
	got := gunzipLines(t, objectsUnder(t, filepath.Join(root, "enriched-data")))
	seen := map[string]int{}
	for _, l := range got {
		for i := range lines {
			if strings.Contains(l, fmt.Sprintf(`"eventId":"e%d-`, i)) {
				seen[fmt.Sprint(i)]++
			}
		}
	}
	if len(got) != 30 || len(seen) != 30 {
		t.Fatalf("%d records, %d distinct", len(got), len(seen))
	}
}

func TestLoadContext(t *testing.T) {
	s, err := enrich.Open(filepath.Join(t.TempDir(), "s.mdb"), enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items := readFile(t, filepath.Join(srcdir(t), "examples", "seed-products.ddb.jsonl"))
	o := enrich.LoadOptions{Key: "productId", Format: enrich.LoadDynamoDB}

	// Cancelled while the input is read: nothing is loaded.
	ctx, cancel := context.WithCancel(context.Background())
	lines := strings.SplitAfter(string(items), "\n")
	r := &lineReader{lines: lines, onLine: func(k int) {
		if k == 0 {
			cancel()
		}
	}}
	if n, err := s.LoadContext(ctx, "products", r, o); !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("%d %v", n, err)
	}
	if st, err := s.Stats(); err != nil || len(st.Tables) != 0 {
		t.Fatalf("after a cancelled load: %+v %v", st, err)
	}
	n, err := s.LoadContext(context.Background(), "products", bytes.NewReader(items), o)
	if err != nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := s.Get("products", []byte("PROD-002")); err != nil {
		t.Fatal(err)
	}
	// An error of the load itself comes back as from Load.
	if _, err := s.LoadContext(context.Background(), "products", strings.NewReader("{"), enrich.LoadOptions{}); !errors.Is(err, enrich.ErrJSON) {
		t.Fatalf("bad input: %v", err)
	}
}
