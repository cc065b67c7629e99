package enrich_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"example.invalid/libenrich/enrich"
)

// rssBytes reads the resident set size from /proc/self/statm.
func rssBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func settledRSS(t testing.TB) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes(t)
}

// 100 000 batches through every input shape, encoding and error path, plus
// contexts, pipelines and store handles made and closed: resident memory
// stays flat (C memory is not seen by the Go GC, so a leak there shows).
func TestNoMemoryGrowth(t *testing.T) {
	if underASan() {
		t.Skip("RSS is meaningless under ASan (quarantine, shadow memory): ENRICH_UNDER_ASAN is set")
	}
	if raceEnabled {
		t.Skip("RSS is meaningless under the race detector (shadow memory)")
	}
	batches := 100000
	if testing.Short() {
		batches = 10000
	}
	s, p := seedPipeline(t)
	lines := seedEventLines(t)
	ndjson := []byte(strings.Join(lines, "\n") + "\nnot json\n{\"productId\":1e999}\n")
	var pipes, fh, kin bytes.Buffer
	pipes.WriteString("[")
	fh.WriteString(`{"records":[`)
	kin.WriteString(`{"Records":[`)
	for i, e := range append(lines, "***") {
		if i > 0 {
			pipes.WriteString(",")
			fh.WriteString(",")
			kin.WriteString(",")
		}
		d := b64(e)
		if e == "***" {
			d = e
		}
		fmt.Fprintf(&pipes, `{"eventID":"e%d","data":"%s"}`, i, d)
		fmt.Fprintf(&fh, `{"recordId":"r%d","data":"%s","approximateArrivalTimestamp":1510772160000}`, i, d)
		fmt.Fprintf(&kin, `{"kinesis":{"sequenceNumber":"%d","data":"%s"}}`, i, d)
	}
	pipes.WriteString("]")
	fh.WriteString("]}")
	kin.WriteString("]}")
	work := []struct {
		in  enrich.Input
		src []byte
		enc enrich.Encoding
	}{
		{enrich.InputNDJSON, ndjson, enrich.EncodeNDJSON},
		{enrich.InputNDJSON, ndjson, enrich.EncodeNone},
		{enrich.InputJSONArray, []byte("[" + strings.Join(lines, ",") + "]"), enrich.EncodeJSONArray},
		{enrich.InputJSONArray, []byte("[{"), enrich.EncodeJSONArray}, // batch error
		{enrich.InputPipes, pipes.Bytes(), enrich.EncodeJSONArray},
		{enrich.InputFirehose, fh.Bytes(), enrich.EncodeFirehose},
		{enrich.InputKinesis, kin.Bytes(), enrich.EncodeKinesisResponse},
		{enrich.InputNDJSON, ndjson, enrich.EncodeFirehose}, // encode error
	}
	round := func(k int) {
		w := work[k%len(work)]
		p.Enrich(w.in, w.src, w.enc)
		if k%1000 == 0 { // handles made and freed
			c, err := p.NewContext()
			if err != nil {
				t.Fatal(err)
			}
			c.Run(enrich.InputNDJSON, ndjson)
			c.Partition(0)
			c.Close()
			q, err := s.Compile(nil)
			if err != nil {
				t.Fatal(err)
			}
			q.Enrich(enrich.InputNDJSON, ndjson, enrich.EncodeNDJSON)
			q.Close()
			s.Get("products", []byte("PROD-001"))
			s.Get("products", []byte("nope"))
		}
	}
	warm := batches / 10
	for k := 0; k < warm; k++ {
		round(k)
	}
	before := settledRSS(t)
	for k := warm; k < batches; k++ {
		round(k)
	}
	after := settledRSS(t)
	growth := after - before
	t.Logf("%d batches: RSS after warm-up (%d) %.1f MiB, at the end %.1f MiB, growth %+d KiB",
		batches, warm, float64(before)/(1<<20), float64(after)/(1<<20), growth/1024)
	// A leak of 40 bytes per batch would be 3.4 MiB here.
	if growth > 2<<20 {
		t.Fatalf("resident memory grew by %d KiB over %d batches", growth/1024, batches-warm)
	}
}
