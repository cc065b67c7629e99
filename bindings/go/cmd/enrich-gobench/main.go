// enrich-gobench: events per second through the Go binding against the C
// API on the same workload, in one process, for the bench tool (bench/).
//
//	enrich-gobench [-store S -events E.ndjson [-rules R]] [-batch 500]
//	               [-goroutines 1] [-seconds 3] [-mode both|go|c]
//
// Without -store/-events it builds the workload itself in a temp dir:
// 10 000 products and 100 000 events (90% hits, 5% misses, 5% no key).
// Each side runs whole batches of -batch events, NDJSON in and out:
//
//	go: Pipeline.Enrich(InputNDJSON, batch, EncodeNDJSON) from -goroutines
//	    goroutines (records and output copied into Go memory);
//	c:  enrich_batch_run + enrich_encode (NDJSON) into a reused buffer, one
//	    ctx per thread (from -goroutines pthreads).
//
// Output, one line per side, easy to parse:
//
//	go events_per_sec=1234567 events=... batches=... seconds=... goroutines=...
package main

/*
#cgo pkg-config: libenrich
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "enrich/enrich.h"

struct cbench {
	enrich_pipeline *p;
	const char *src; size_t src_len;
	const size_t *batch_off; size_t nbatches; // batch b: src[off[b], off[b+1])
	double seconds;
	size_t events, batches;
	int rc;
};

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *cbench_thread(void *arg) {
	struct cbench *b = arg;
	enrich_ctx *ctx = NULL;
	b->rc = enrich_ctx_create(b->p, &ctx);
	if (b->rc) return NULL;
	size_t cap = 1 << 20, w = 0;
	char *out = malloc(cap);
	double t0 = now_s(), t;
	size_t k = 0;
	do {
		for (int j = 0; j < 16; j++, k++) {
			size_t i = k % b->nbatches;
			b->rc = enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, b->src + b->batch_off[i],
			                         b->batch_off[i + 1] - b->batch_off[i]);
			if (b->rc) goto done;
			if (enrich_encode(ctx, ENRICH_ENCODE_NDJSON, out, cap, &w) == ENRICH_E_DST_SIZE) {
				free(out); cap = w * 2; out = malloc(cap);
				enrich_encode(ctx, ENRICH_ENCODE_NDJSON, out, cap, &w);
			}
			b->events += enrich_batch_count(ctx);
			b->batches++;
		}
		t = now_s();
	} while (t - t0 < b->seconds);
	b->seconds = t - t0;
done:
	free(out);
	enrich_ctx_free(ctx);
	return NULL;
}

// Runs n threads; returns 0 or the first error; totals in *events, *batches, *secs.
static int cbench_run(const char *store_path, const char *rules, size_t rules_len,
                      const char *src, size_t src_len, const size_t *off, size_t nb,
                      int n, double seconds, size_t *events, size_t *batches, double *secs) {
	enrich_store *s = NULL;
	enrich_pipeline *p = NULL;
	int rc = enrich_store_open(store_path, ENRICH_STORE_RDONLY, &s);
	if (rc) return rc;
	rc = enrich_pipeline_compile(s, rules, rules_len, &p, NULL, 0);
	if (rc) { enrich_store_close(s); return rc; }
	struct cbench *b = calloc((size_t)n, sizeof *b);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	for (int i = 0; i < n; i++) {
		b[i] = (struct cbench){p, src, src_len, off, nb, seconds, 0, 0, 0};
		pthread_create(&th[i], NULL, cbench_thread, &b[i]);
	}
	*events = *batches = 0; *secs = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (b[i].rc && !rc) rc = b[i].rc;
		*events += b[i].events; *batches += b[i].batches;
		if (b[i].seconds > *secs) *secs = b[i].seconds;
	}
	free(b); free(th);
	enrich_pipeline_free(p);
	enrich_store_close(s);
	return rc;
}
*/
import "C"

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"example.invalid/libenrich/enrich"
)

func main() {
	storePath := flag.String("store", "", "reference store (default: generated)")
	eventsPath := flag.String("events", "", "NDJSON events (default: generated)")
	rulesPath := flag.String("rules", "", "rule set (default: the seed rules)")
	batch := flag.Int("batch", 500, "events per batch")
	goroutines := flag.Int("goroutines", 1, "goroutines (go) and threads (c)")
	seconds := flag.Float64("seconds", 3, "seconds per side")
	mode := flag.String("mode", "both", "both, go or c")
	flag.Parse()
	if err := run(*storePath, *eventsPath, *rulesPath, *batch, *goroutines, *seconds, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "enrich-gobench:", err)
		os.Exit(1)
	}
}

func generate(dir string) (string, []byte, error) {
	store := filepath.Join(dir, "bench.mdb")
	s, err := enrich.Open(store, enrich.Create)
	if err != nil {
		return "", nil, err
	}
	defer s.Close()
	var items bytes.Buffer
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&items, `{"productId":"PROD-%05d","productName":"Product %d","category":"Category %d","price":%d.99}`+"\n",
			i, i, i%50, i%500)
	}
	if _, err := s.Load("products", items.Bytes(), enrich.LoadOptions{Key: "productId"}); err != nil {
		return "", nil, err
	}
	r := rand.New(rand.NewSource(1))
	var ev bytes.Buffer
	for i := 0; i < 100000; i++ {
		switch x := r.Intn(100); {
		case x < 90:
			fmt.Fprintf(&ev, `{"eventId":"evt-%06d","productId":"PROD-%05d","quantity":%d,"timestamp":"2024-01-15T10:30:00Z"}`+"\n", i, r.Intn(10000), x)
		case x < 95:
			fmt.Fprintf(&ev, `{"eventId":"evt-%06d","productId":"PROD-X%04d","quantity":1,"timestamp":"2024-01-15T10:30:00Z"}`+"\n", i, x)
		default:
			fmt.Fprintf(&ev, `{"eventId":"evt-%06d","quantity":2,"timestamp":"2024-01-15T10:30:00Z"}`+"\n", i)
		}
	}
	return store, ev.Bytes(), nil
}

func run(storePath, eventsPath, rulesPath string, batch, goroutines int, seconds float64, mode string) error {
	var events []byte
	var err error
	if storePath == "" || eventsPath == "" {
		dir, err := os.MkdirTemp("", "enrich-gobench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if storePath, events, err = generate(dir); err != nil {
			return err
		}
	} else if events, err = os.ReadFile(eventsPath); err != nil {
		return err
	}
	var rules []byte
	if rulesPath != "" {
		if rules, err = os.ReadFile(rulesPath); err != nil {
			return err
		}
	}
	// Batch boundaries: every batch lines.
	off := []C.size_t{0}
	for i, n := 0, 0; i < len(events); i++ {
		if events[i] == '\n' {
			if n++; n == batch {
				off = append(off, C.size_t(i+1))
				n = 0
			}
		}
	}
	if int(off[len(off)-1]) != len(events) {
		off = append(off, C.size_t(len(events)))
	}
	nb := len(off) - 1
	if nb == 0 {
		return fmt.Errorf("no events")
	}

	if mode == "both" || mode == "go" {
		s, err := enrich.Open(storePath, enrich.ReadOnly)
		if err != nil {
			return err
		}
		p, err := s.Compile(rules, enrich.MaxContexts(goroutines))
		if err != nil {
			s.Close()
			return err
		}
		var nev, nbat int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		t0 := time.Now()
		deadline := t0.Add(time.Duration(seconds * float64(time.Second)))
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for k := g; time.Now().Before(deadline); {
					for j := 0; j < 16; j++ {
						i := k % nb
						k++
						b, err := p.Enrich(enrich.InputNDJSON, events[off[i]:off[i+1]], enrich.EncodeNDJSON)
						if err != nil {
							firstErr.Store(err)
							return
						}
						atomic.AddInt64(&nev, int64(len(b.Records)))
						atomic.AddInt64(&nbat, 1)
					}
				}
			}(g)
		}
		wg.Wait()
		el := time.Since(t0).Seconds()
		p.Close()
		s.Close()
		if e := firstErr.Load(); e != nil {
			return e.(error)
		}
		fmt.Printf("go events_per_sec=%.0f events=%d batches=%d seconds=%.2f goroutines=%d batch=%d\n",
			float64(nev)/el, nev, nbat, el, goroutines, batch)
	}
	if mode == "both" || mode == "c" {
		cpath := C.CString(storePath)
		defer C.free(unsafe.Pointer(cpath))
		csrc := C.CBytes(events)
		defer C.free(csrc)
		coff := (*C.size_t)(C.malloc(C.size_t(len(off)) * C.size_t(unsafe.Sizeof(C.size_t(0)))))
		defer C.free(unsafe.Pointer(coff))
		copy(unsafe.Slice(coff, len(off)), off)
		var crules unsafe.Pointer
		if len(rules) > 0 {
			crules = C.CBytes(rules)
			defer C.free(crules)
		}
		var nev, nbat C.size_t
		var secs C.double
		rc := C.cbench_run(cpath, (*C.char)(crules), C.size_t(len(rules)), (*C.char)(csrc), C.size_t(len(events)),
			coff, C.size_t(nb), C.int(goroutines), C.double(seconds), &nev, &nbat, &secs)
		if rc != 0 {
			return fmt.Errorf("C side: %s", enrich.StatusName(int(rc)))
		}
		fmt.Printf("c events_per_sec=%.0f events=%d batches=%d seconds=%.2f threads=%d batch=%d\n",
			float64(nev)/float64(secs), nev, nbat, float64(secs), goroutines, batch)
	}
	return nil
}
