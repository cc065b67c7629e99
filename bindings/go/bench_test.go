package enrich_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"example.invalid/libenrich/enrich"
)

// go test -run '^$' -bench . -benchtime 3s: events/s through the binding
// on a batch of 500 events (90% hits, 5% misses, 5% no key) against 1000
// products. cmd/enrich-gobench compares the same with the C API.
func benchPipeline(b *testing.B) (*enrich.Pipeline, []byte, int) {
	path := filepath.Join(b.TempDir(), "bench.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var items, ev bytes.Buffer
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&items, `{"productId":"PROD-%04d","productName":"Product %d","category":"C%d","price":%d.99}`+"\n", i, i, i%20, i)
	}
	if _, err := s.Load("products", items.Bytes(), enrich.LoadOptions{Key: "productId"}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		switch {
		case i%20 == 0:
			fmt.Fprintf(&ev, `{"eventId":"evt-%d","quantity":1}`+"\n", i)
		case i%20 == 1:
			fmt.Fprintf(&ev, `{"eventId":"evt-%d","productId":"NOPE-%d","quantity":1}`+"\n", i, i)
		default:
			fmt.Fprintf(&ev, `{"eventId":"evt-%d","productId":"PROD-%04d","quantity":%d,"timestamp":"2024-01-15T10:30:00Z"}`+"\n", i, (i*37)%1000, i)
		}
	}
	p, err := s.Compile(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p, ev.Bytes(), 500
}

func BenchmarkEnrichNDJSON(b *testing.B) {
	p, src, n := benchPipeline(b)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	start := time.Now() // b.Elapsed needs Go 1.20
	for i := 0; i < b.N; i++ {
		if _, err := p.Enrich(enrich.InputNDJSON, src, enrich.EncodeNDJSON); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "events/s")
}

func BenchmarkEnrichNDJSONParallel(b *testing.B) {
	p, src, n := benchPipeline(b)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	start := time.Now() // b.Elapsed needs Go 1.20
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Enrich(enrich.InputNDJSON, src, enrich.EncodeNDJSON); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "events/s")
}
