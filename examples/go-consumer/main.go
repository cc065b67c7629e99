// go-consumer: a stream consumer built on the libenrich Go binding.
//
// It reads events from stdin, enriches them in batches against a reference
// store, and writes NDJSON to stdout in input order, one line per event.
//
//	go-consumer -store products.mdb < events.ndjson > enriched.ndjson
//	go-consumer -store products.mdb -input kinesis < records.jsonl
//
// -input ndjson (default): one event per line. -input kinesis: one Kinesis
// record per line, as a Lambda Kinesis event holds them
// ({"kinesis":{"data":"<base64>","sequenceNumber":...}}); the consumer
// wraps each batch into {"Records":[...]}.
//
// A batch ends at -batch lines or when -linger passes with no new line,
// whichever is first. -workers batches are enriched at once (the pipeline
// is safe for concurrent use); output keeps the input order. A summary
// goes to stderr at the end.
//
// The binding links the C library through pkg-config (libenrich.pc); in a
// meson build tree use PKG_CONFIG_PATH=<build>/meson-uninstalled.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"example.invalid/libenrich/enrich"
)

func main() {
	storePath := flag.String("store", "", "reference store (file, or directory holding data.mdb)")
	rulesPath := flag.String("rules", "", "JSON rule set (default: the seed rules)")
	input := flag.String("input", "ndjson", "input shape: ndjson or kinesis")
	batchSize := flag.Int("batch", 500, "events per batch")
	linger := flag.Duration("linger", 200*time.Millisecond, "flush a partial batch after this long without input")
	workers := flag.Int("workers", 2, "batches enriched at once")
	clockMs := flag.Int64("clock-ms", -1, "fixed clock in epoch ms (tests); -1: real clock")
	flag.Parse()
	if *storePath == "" || *batchSize < 1 || *workers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	in := enrich.InputNDJSON
	switch *input {
	case "ndjson":
	case "kinesis":
		in = enrich.InputKinesis
	default:
		fmt.Fprintf(os.Stderr, "go-consumer: unknown -input %q\n", *input)
		os.Exit(2)
	}
	if err := run(*storePath, *rulesPath, in, *batchSize, *linger, *workers, *clockMs); err != nil {
		fmt.Fprintln(os.Stderr, "go-consumer:", err)
		os.Exit(1)
	}
}

func run(storePath, rulesPath string, in enrich.Input, batchSize int, linger time.Duration,
	workers int, clockMs int64) error {
	store, err := enrich.Open(storePath, enrich.ReadOnly)
	if err != nil {
		return err
	}
	defer store.Close()
	var rules []byte
	if rulesPath != "" {
		if rules, err = os.ReadFile(rulesPath); err != nil {
			return err
		}
	}
	p, err := store.Compile(rules, enrich.ClockMs(clockMs), enrich.MaxContexts(workers))
	if err != nil {
		return err
	}
	defer p.Close()

	// Lines from stdin, batched by count or linger.
	lines := make(chan []byte, batchSize)
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(os.Stdin, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				lines <- line
			}
			if err != nil {
				close(lines)
				if err == io.EOF {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()

	type result struct {
		out   []byte
		batch *enrich.Batch
		err   error
	}
	pending := make(chan chan result, workers)
	sem := make(chan struct{}, workers)
	go func() {
		defer close(pending)
		var buf bytes.Buffer
		n := 0
		timer := time.NewTimer(linger)
		flush := func() {
			if n == 0 {
				return
			}
			src := buf.Bytes()
			if in == enrich.InputKinesis {
				src = append(append([]byte(`{"Records":[`), bytes.TrimSuffix(src, []byte(","))...), "]}"...)
			} else {
				src = append([]byte(nil), src...)
			}
			buf.Reset()
			n = 0
			ch := make(chan result, 1)
			pending <- ch
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				b, err := p.Enrich(in, src, enrich.EncodeNDJSON)
				if err != nil {
					ch <- result{err: err}
					return
				}
				ch <- result{out: b.Output, batch: b}
			}()
		}
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					flush()
					return
				}
				if in == enrich.InputKinesis {
					buf.Write(bytes.TrimSpace(line))
					buf.WriteByte(',')
				} else {
					buf.Write(line)
					if line[len(line)-1] != '\n' {
						buf.WriteByte('\n')
					}
				}
				n++
				if n >= batchSize {
					flush()
				}
			case <-timer.C:
				flush()
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(linger)
		}
	}()

	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var counts [4]int
	var firstErr error
	for ch := range pending {
		r := <-ch
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		w.Write(r.out)
		if err := w.Flush(); err != nil && firstErr == nil {
			firstErr = err
		}
		for _, rec := range r.batch.Records {
			counts[rec.Outcome]++
		}
	}
	if err := <-readErr; err != nil && firstErr == nil {
		firstErr = err
	}
	fmt.Fprintf(os.Stderr, "go-consumer: %d success, %d not found, %d no key, %d error\n",
		counts[enrich.OutcomeSuccess], counts[enrich.OutcomeNotFound], counts[enrich.OutcomeNoKey],
		counts[enrich.OutcomeError])
	return firstErr
}
