package enrich

import (
	"sync"

	"example.invalid/libenrich/enrich/internal/capi"
)

// Context is one C context (enrich_ctx) of a pipeline, for callers that
// want to read a batch's results in place (Partition, Encode in several
// encodings) rather than take a Batch from Pipeline.Enrich. Its methods
// are serialized by a mutex, so sharing one between goroutines is safe,
// but it runs one batch at a time: give each goroutine its own Context,
// or use Pipeline.Enrich. Close it when done (the pipeline's Close does).
type Context struct {
	p  *Pipeline
	mu sync.Mutex
	h  capi.Ctx // nil once closed
	in Input
}

// NewContext makes a context with the pipeline's options, then opts.
func (p *Pipeline) NewContext(opts ...Option) (*Context, error) {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.h == nil {
		return nil, ErrClosed
	}
	h, err := p.newCtx(opts)
	if err != nil {
		return nil, err
	}
	c := &Context{p: p, h: h}
	p.mu.Lock()
	p.contexts[c] = struct{}{}
	p.mu.Unlock()
	return c, nil
}

// with runs f on the live handle, under the pipeline's life lock and the
// context's own lock.
func (c *Context) with(f func(h capi.Ctx) error) error {
	c.p.life.RLock()
	defer c.p.life.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return ErrClosed
	}
	return f(c.h)
}

// Close frees the context. Closing twice is a no-op.
func (c *Context) Close() error {
	c.p.life.RLock()
	defer c.p.life.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	capi.DeleteCtx(c.h)
	c.h = nil
	c.p.mu.Lock()
	delete(c.p.contexts, c)
	c.p.mu.Unlock()
	return nil
}

// SetOption sets one tunable on this context.
func (c *Context) SetOption(o Option) error {
	return c.with(func(h capi.Ctx) error {
		if o.id == optMaxContexts {
			return codeErr(ErrInvalid.Code, "SetOption", "MaxContexts is a pipeline option")
		}
		if rc := capi.Ctx_set_option(h, capi.Enum_SS_enrich_option(o.id), o.value); rc != 0 {
			return codeErr(rc, "enrich_ctx_set_option", capi.Ctx_errmsg(h))
		}
		return nil
	})
}

// Run enriches one batch; its results stay readable through the other
// methods until the next Run or Reset.
func (c *Context) Run(in Input, batch []byte) error {
	return c.with(func(h capi.Ctx) error {
		c.in = in
		return run(h, in, batch)
	})
}

// Enrich is Run followed by a copy of the results, as Pipeline.Enrich.
func (c *Context) Enrich(in Input, batch []byte, enc Encoding) (*Batch, error) {
	var b *Batch
	err := c.with(func(h capi.Ctx) error {
		c.in = in
		if err := run(h, in, batch); err != nil {
			return err
		}
		var err error
		b, err = snapshot(h, in, enc)
		return err
	})
	return b, err
}

// Reset drops the last batch's results and releases the read snapshot,
// so loaders can reuse its pages; the buffers are kept.
func (c *Context) Reset() {
	_ = c.with(func(h capi.Ctx) error { capi.Ctx_reset(h); return nil })
}

// Len is the number of records of the last batch.
func (c *Context) Len() int {
	n := 0
	_ = c.with(func(h capi.Ctx) error { n = int(capi.Batch_count(h)); return nil })
	return n
}

// Record is a copy of record i's enriched JSON (nil if out of range).
func (c *Context) Record(i int) []byte {
	var b []byte
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 && i < int(capi.Batch_count(h)) {
			b = capi.Batch_record(h, int64(i))
		}
		return nil
	})
	return b
}

// RecordID is record i's id as its envelope gave it ("" for NDJSON and
// array input).
func (c *Context) RecordID(i int) string {
	var s string
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			s = string(capi.Aws_record_id(h, int64(i)))
		}
		return nil
	})
	return s
}

// Invalid is why the rule set's "validate" refused record i of an AWS
// batch whose shape asks for it (see Record.Invalid); "" otherwise.
func (c *Context) Invalid(i int) string {
	var s string
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			s = string(capi.Aws_invalid_reason(h, int64(i)))
		}
		return nil
	})
	return s
}

// Outcome of record i (OutcomeError when out of range).
func (c *Context) Outcome(i int) Outcome {
	o := OutcomeError
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			o = Outcome(capi.Batch_outcome(h, int64(i)))
		}
		return nil
	})
	return o
}

// Err is why record i failed: nil, or the sentinel of its code.
func (c *Context) Err(i int) error {
	var e error = ErrInvalid
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			e = recordErr(capi.Batch_error(h, int64(i)))
		}
		return nil
	})
	return e
}

// Result is what the AWS response does with record i.
func (c *Context) Result(i int) Result {
	r := ResultFailed
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			r = Result(capi.Aws_result(h, int64(i)))
		}
		return nil
	})
	return r
}

// ArrivalMs is record i's arrival time in epoch ms, or -1.
func (c *Context) ArrivalMs(i int) int64 {
	t := int64(-1)
	_ = c.with(func(h capi.Ctx) error {
		if i >= 0 {
			t = capi.Aws_arrival_ms(h, int64(i))
		}
		return nil
	})
	return t
}

// Partition is record i's partition path, "year=YYYY/month=MM/day=DD".
func (c *Context) Partition(i int) (string, error) {
	var s string
	err := c.with(func(h capi.Ctx) error {
		if i < 0 {
			return codeErr(ErrInvalid.Code, "enrich_batch_partition", "negative index")
		}
		buf := make([]byte, 32)
		n := 0
		if rc := capi.Batch_partition(h, int64(i), buf, &n); rc != 0 {
			return codeErr(rc, "enrich_batch_partition", capi.Ctx_errmsg(h))
		}
		s = string(buf[:n])
		return nil
	})
	return s, err
}

// Encode returns the last batch in encoding enc.
func (c *Context) Encode(enc Encoding) ([]byte, error) {
	var out []byte
	err := c.with(func(h capi.Ctx) error {
		var err error
		out, err = encode(h, c.in, enc)
		return err
	})
	return out, err
}
