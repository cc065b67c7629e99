package enrich

import (
	"bufio"
	"bytes"
	"context"
	"io"
)

// Streams: NDJSON from an io.Reader, in batches, on top of the batch API
// (Pipeline.Enrich, Delivery.Run, Store.Load), with a context.Context to
// stop them. A batch is the unit of work of the C library and is never
// cut short: cancellation is seen between batches (and between the reads
// that fill one), so what was written or delivered is always whole
// batches, and the returned StreamStats say how far the input was
// consumed, for a restart from there. A Read that blocks is not
// interrupted by the context: close the reader (or give it a deadline) to
// unblock it.

// StreamOptions tune EnrichStream and Delivery.RunStream.
type StreamOptions struct {
	// BatchEvents: a batch ends after this many events (default 500).
	BatchEvents int
	// BatchBytes: a batch ends once it holds this many bytes (default
	// 1 MiB); a longer event is a batch of its own.
	BatchBytes int
	// OnBatch, if set, is called by EnrichStream after each batch was
	// written (the Batch has its records, Output is what was written); an
	// error stops the stream and is returned. RunStream does not call it
	// (the delivery's Metrics count its batches).
	OnBatch func(b *Batch) error
}

// StreamStats say how much of a stream was processed. Only whole batches
// count: Bytes is the input position just past the last batch written or
// delivered, where a restart resumes.
type StreamStats struct {
	Batches  int
	Events   int    // events (non-blank lines) in those batches
	Bytes    int64  // input bytes of those batches
	Outcomes [4]int // EnrichStream only: records per Outcome
}

const (
	defaultBatchEvents = 500
	defaultBatchBytes  = 1 << 20
)

// batcher cuts NDJSON input into batches of whole lines.
type batcher struct {
	br        *bufio.Reader
	maxEvents int
	maxBytes  int
	buf       []byte
	err       error // the reader's error, once seen (io.EOF at the end)
}

func newBatcher(r io.Reader, o StreamOptions) *batcher {
	b := &batcher{br: bufio.NewReaderSize(r, 64<<10), maxEvents: o.BatchEvents,
		maxBytes: o.BatchBytes}
	if b.maxEvents <= 0 {
		b.maxEvents = defaultBatchEvents
	}
	if b.maxBytes <= 0 {
		b.maxBytes = defaultBatchBytes
	}
	return b
}

// next reads the next batch: its bytes (valid until the next call) and
// event count. An empty batch means the input is over (b.err says how);
// a cancelled ctx stops it between lines with ctx.Err().
func (b *batcher) next(ctx context.Context) ([]byte, int, error) {
	b.buf = b.buf[:0]
	events := 0
	for b.err == nil && events < b.maxEvents && len(b.buf) < b.maxBytes {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		start := len(b.buf)
		for {
			chunk, err := b.br.ReadSlice('\n')
			b.buf = append(b.buf, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			b.err = err
			break
		}
		if len(bytes.TrimSpace(b.buf[start:])) > 0 {
			events++
		}
	}
	if b.err != nil && b.err != io.EOF {
		// A broken read: the lines read since the last batch are not
		// processed (the last one may be cut); Bytes says where to resume.
		return nil, 0, b.err
	}
	return b.buf, events, nil
}

// EnrichStream reads NDJSON events from r, enriches them in batches
// (StreamOptions) and writes the enriched records to w as NDJSON, in input
// order. It returns at the end of r, at the first error (reading,
// enriching, writing, OnBatch), or when ctx is done (ctx.Err()); the
// stats count the batches written. Safe for concurrent use, like Enrich.
func (p *Pipeline) EnrichStream(ctx context.Context, r io.Reader, w io.Writer, o StreamOptions) (StreamStats, error) {
	var st StreamStats
	in := newBatcher(r, o)
	for {
		batch, events, err := in.next(ctx)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			return st, nil
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		b, err := p.Enrich(InputNDJSON, batch, EncodeNDJSON)
		if err != nil {
			return st, err
		}
		if _, err := w.Write(b.Output); err != nil {
			return st, err
		}
		st.Batches++
		st.Events += events
		st.Bytes += int64(len(batch))
		for i := range b.Records {
			if oc := b.Records[i].Outcome; oc >= 0 && int(oc) < len(st.Outcomes) {
				st.Outcomes[oc]++
			}
		}
		if o.OnBatch != nil {
			if err := o.OnBatch(b); err != nil {
				return st, err
			}
		}
	}
}

// RunStream delivers NDJSON events read from r in batches (StreamOptions),
// each through Run. Input positions are byte offsets: r must start at
// InputEnd() (after a restart, skip ResumeOffset() bytes of the input
// first), and each batch is acknowledged at InputEnd() plus the bytes
// read. It returns at the end of r, at the first error, or when ctx is
// done (ctx.Err()); the batches delivered until then stay delivered and
// are acknowledged once published (Flush, Close), so a later RunStream
// from InputEnd() goes on where this one stopped.
func (d *Delivery) RunStream(ctx context.Context, r io.Reader, o StreamOptions) (StreamStats, error) {
	var st StreamStats
	in := newBatcher(r, o)
	pos := d.InputEnd()
	for {
		batch, events, err := in.next(ctx)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			return st, nil
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		end := pos + uint64(len(batch))
		if err := d.Run(InputNDJSON, batch, end); err != nil {
			return st, err
		}
		pos = end
		st.Batches++
		st.Events += events
		st.Bytes += int64(len(batch))
	}
}

// LoadContext reads the items of table from r and loads them as Load
// does. A load is one transaction (readers see all old or all new items),
// so ctx can stop it only before the transaction begins: while r is read
// (between reads) and just before the load; then the load runs to its
// commit or failure. A cancelled load changes nothing and returns
// ctx.Err(). The whole input is held in memory, as Load needs it.
func (s *Store) LoadContext(ctx context.Context, table string, r io.Reader, o LoadOptions) (int, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := r.Read(chunk)
		buf.Write(chunk[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.Load(table, buf.Bytes(), o)
}
