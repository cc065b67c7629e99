package enrich

import (
	"runtime"
	"sync"

	"example.invalid/libenrich/enrich/internal/capi"
)

// Pipeline is a compiled rule set (enrich_pipeline) with a bounded pool of
// C contexts. It is safe for use by many goroutines at once: Enrich takes
// an idle context (or makes one, up to MaxContexts; beyond that it waits),
// runs the batch on it, copies the results into Go memory, releases the
// context's read snapshot (enrich_ctx_reset) and puts it back. A context is
// thus used by one goroutine at a time, as the C library requires; it may
// move between OS threads (the library opens read transactions with
// MDB_NOTLS), so nothing is pinned with runtime.LockOSThread.
type Pipeline struct {
	store *Store
	life  sync.RWMutex  // held shared by every call, exclusively by Close
	h     capi.Pipeline // nil once closed
	opts  []Option      // C options applied to every new context
	sem   chan struct{} // one token per context lent out
	idle  chan capi.Ctx // contexts waiting to be lent

	mu         sync.Mutex
	contexts   map[*Context]struct{}  // made by NewContext, closed with the pipeline
	deliveries map[*Delivery]struct{} // made by OpenDelivery, closed with the pipeline
}

// Compile compiles a JSON rule set (docs/rules.md) against the store; nil
// rules mean the seed's rules. opts are the context options every batch
// runs with (MaxDepth, ClockMs, ResponseLimit, ...) and MaxContexts.
func (s *Store) Compile(rules []byte, opts ...Option) (*Pipeline, error) {
	max := 2 * runtime.GOMAXPROCS(0)
	if max < 4 {
		max = 4
	}
	if max > 64 {
		max = 64
	}
	var copts []Option
	for _, o := range opts {
		if o.id == optMaxContexts {
			if o.value < 1 {
				return nil, codeErr(ErrInvalid.Code, "MaxContexts", "must be at least 1")
			}
			max = int(o.value)
			continue
		}
		copts = append(copts, o)
	}
	var ph uintptr
	msg := make([]byte, errbufSize)
	if err := s.callMsg("enrich_pipeline_compile", msg, func(h capi.Store) int {
		return capi.Pipeline_compile(h, rules, &ph, msg)
	}); err != nil {
		return nil, err
	}
	p := &Pipeline{store: s, h: capi.SwigcptrPipeline(ph), opts: copts,
		sem: make(chan struct{}, max), idle: make(chan capi.Ctx, max),
		contexts: map[*Context]struct{}{}, deliveries: map[*Delivery]struct{}{}}
	// One context now: bad options fail here, not at the first batch.
	c, err := p.newCtx(nil)
	if err != nil {
		capi.DeletePipeline(p.h)
		return nil, err
	}
	p.idle <- c
	s.mu.Lock()
	if s.h == nil { // the store was closed meanwhile
		s.mu.Unlock()
		capi.DeleteCtx(c)
		capi.DeletePipeline(p.h)
		return nil, ErrClosed
	}
	s.pipelines[p] = struct{}{}
	s.mu.Unlock()
	return p, nil
}

// newCtx makes a C context with the pipeline's options, then extra.
func (p *Pipeline) newCtx(extra []Option) (capi.Ctx, error) {
	var h uintptr
	if rc := capi.Ctx_create(p.h, &h); rc != 0 {
		return nil, codeErr(rc, "enrich_ctx_create", "")
	}
	c := capi.SwigcptrCtx(h)
	for _, list := range [][]Option{p.opts, extra} {
		for _, o := range list {
			if o.id == optMaxContexts {
				continue
			}
			if rc := capi.Ctx_set_option(c, capi.Enum_SS_enrich_option(o.id), o.value); rc != 0 {
				err := codeErr(rc, "enrich_ctx_set_option", capi.Ctx_errmsg(c))
				capi.DeleteCtx(c)
				return nil, err
			}
		}
	}
	return c, nil
}

// get lends a context; the caller holds p.life shared and p.h is live.
func (p *Pipeline) get() (capi.Ctx, error) {
	p.sem <- struct{}{}
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	c, err := p.newCtx(nil)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// put takes a context back, its snapshot released.
func (p *Pipeline) put(c capi.Ctx) {
	capi.Ctx_reset(c)
	p.idle <- c
	<-p.sem
}

// Enrich runs one batch of the given input shape and returns its records
// and, unless enc is EncodeNone, the batch encoded as enc. Bad events do
// not fail the batch: they get OutcomeError and a Record.Err. An error is
// returned when the batch as a whole is unusable (errors.Is(err, ErrJSON):
// not the expected envelope), or when encoding fails; with ErrTooLarge (a
// Pipes array or Kinesis response over the response limit) the Batch is
// returned as well, with its records and no Output.
// Safe for concurrent use.
func (p *Pipeline) Enrich(in Input, batch []byte, enc Encoding) (*Batch, error) {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.h == nil {
		return nil, ErrClosed
	}
	c, err := p.get()
	if err != nil {
		return nil, err
	}
	defer p.put(c)
	if err := run(c, in, batch); err != nil {
		return nil, err
	}
	return snapshot(c, in, enc)
}

// Close waits for the batches in flight, then closes the pipeline's
// deliveries (publishing what they buffer) and frees its contexts (those
// of NewContext included) and the pipeline. The error is that of a
// delivery's last publication; the pipeline is closed all the same.
// Closing twice is a no-op.
func (p *Pipeline) Close() error {
	p.life.Lock()
	if p.h == nil {
		p.life.Unlock()
		return nil
	}
	var err error
	p.mu.Lock()
	for d := range p.deliveries {
		d.mu.Lock()
		if e := d.close(false); e != nil && err == nil {
			err = e
		}
		d.mu.Unlock()
	}
	p.deliveries = nil
	for c := range p.contexts {
		c.mu.Lock()
		if c.h != nil {
			capi.DeleteCtx(c.h)
			c.h = nil
		}
		c.mu.Unlock()
	}
	p.contexts = nil
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			capi.DeleteCtx(c)
			continue
		default:
		}
		break
	}
	capi.DeletePipeline(p.h)
	p.h = nil
	p.life.Unlock()

	s := p.store
	s.mu.Lock()
	delete(s.pipelines, p)
	s.mu.Unlock()
	return err
}

// run enriches one batch: the core's shapes through enrich_batch_run, the
// AWS events (Pipes, Firehose, Kinesis) through enrich_aws_batch_run.
func run(c capi.Ctx, in Input, batch []byte) error {
	if in >= InputPipes {
		if rc := capi.Aws_batch_run(c, capi.Enum_SS_enrich_aws_event(in), batch); rc != 0 {
			return codeErr(rc, "enrich_aws_batch_run", capi.Ctx_errmsg(c))
		}
		return nil
	}
	if rc := capi.Batch_run(c, capi.Enum_SS_enrich_input(in), batch); rc != 0 {
		return codeErr(rc, "enrich_batch_run", capi.Ctx_errmsg(c))
	}
	return nil
}

// encode encodes the ctx's last batch (of input in) into a new slice. The
// AWS responses come from enrich_aws_encode, and so does a JSON array after
// a Pipes batch: the Pipes response, under the response limit.
func encode(c capi.Ctx, in Input, enc Encoding) ([]byte, error) {
	aws := capi.Enum_SS_enrich_aws_response(0)
	switch {
	case enc == EncodeFirehose:
		aws = capi.AWS_RESPONSE_FIREHOSE
	case enc == EncodeKinesisResponse:
		aws = capi.AWS_RESPONSE_KINESIS
	case enc == EncodeJSONArray && in == InputPipes:
		aws = capi.AWS_RESPONSE_PIPES
	}
	e := capi.Enum_SS_enrich_encoding(enc)
	bound := func() int {
		if aws != 0 {
			return int(capi.Aws_encode_bound(c, aws))
		}
		return int(capi.Encode_bound(c, e))
	}
	buf := make([]byte, bound())
	for {
		n := 0
		var rc int
		if aws != 0 {
			rc = capi.Aws_encode(c, aws, buf, &n)
		} else {
			rc = capi.Encode(c, e, buf, &n)
		}
		if rc == 0 {
			return buf[:n], nil
		}
		err := codeErr(rc, "enrich_encode", capi.Ctx_errmsg(c))
		if !isDstSize(err) || n <= len(buf) {
			return nil, err
		}
		buf = make([]byte, n)
	}
}

// Batch is one enriched batch, copied out of the C context: plain Go
// memory, valid for as long as you keep it.
type Batch struct {
	Input   Input
	Output  []byte   // the batch encoded as asked (nil for EncodeNone)
	Records []Record // one per input record, in input order
}

// Record is one record of a Batch.
type Record struct {
	// Data is the enriched JSON, without newline. With EncodeNDJSON and
	// EncodeJSONArray it shares memory with Batch.Output (except for a
	// Pipes response that validated records: see Invalid).
	Data      []byte
	Outcome   Outcome
	Err       error  // nil unless Outcome is OutcomeError: an *Error (ErrJSON, ErrBase64, ...)
	Result    Result // what the AWS response does with it
	ID        string // eventID / recordId / sequenceNumber ("" for NDJSON and array input)
	ArrivalMs int64  // approximateArrivalTimestamp in epoch ms, -1 if none
	// Invalid is why the rule set's "validate" refused the record, when
	// the rule set's section of this AWS shape has "invalid"
	// (docs/aws.md, "Invalid records"): "quantity: above max 1000". ""
	// when valid or not checked.
	Invalid string
}

// Count is the number of records with outcome o.
func (b *Batch) Count(o Outcome) int {
	n := 0
	for i := range b.Records {
		if b.Records[i].Outcome == o {
			n++
		}
	}
	return n
}

// InvalidReasons counts the batch's invalid records by reason (nil when
// there are none): what an AWS handler reports as metrics.
func (b *Batch) InvalidReasons() map[string]int {
	var m map[string]int
	for i := range b.Records {
		if r := b.Records[i].Invalid; r != "" {
			if m == nil {
				m = map[string]int{}
			}
			m[r]++
		}
	}
	return m
}

const metaWidth = 7 // int64s per record from enrich_go_meta (enrich_go.i)

// snapshot copies the ctx's last batch into Go memory: one cgo call for
// the per-record fields, one for the records (unless the encoding holds
// them verbatim), one for the ids, one for the validation reasons (when
// there are any), one or two for the encoding.
func snapshot(c capi.Ctx, in Input, enc Encoding) (*Batch, error) {
	n := int(capi.Batch_count(c))
	b := &Batch{Input: in, Records: make([]Record, n)}
	if n == 0 {
		if enc != EncodeNone {
			out, err := encode(c, in, enc)
			b.Output = out
			if err != nil {
				return b, err
			}
		}
		return b, nil
	}
	meta := make([]int64, n*metaWidth)
	capi.Go_meta(c, meta)

	var encErr error
	if enc != EncodeNone {
		b.Output, encErr = encode(c, in, enc)
	}

	// Record bytes: inside the NDJSON or array output, else one arena. A
	// Pipes response that validated records (pipes.invalid) is not the
	// records verbatim: it lacks the removed ones and adds validationError
	// to the kept ones.
	invalid := 0
	for i := 0; i < n; i++ {
		invalid += int(meta[i*metaWidth+6])
	}
	var data []byte
	off, sep := 0, 1
	switch {
	case encErr == nil && enc == EncodeNDJSON:
		data = b.Output
	case encErr == nil && enc == EncodeJSONArray && (in != InputPipes || invalid == 0):
		data, off = b.Output, 1
	default:
		need := 0
		for i := 0; i < n; i++ {
			need += int(meta[i*metaWidth+3])
		}
		data = make([]byte, need)
		capi.Go_concat(c, 0, data)
		sep = 0
	}
	var ids string
	if in >= InputPipes {
		need := 0
		for i := 0; i < n; i++ {
			need += int(meta[i*metaWidth+4])
		}
		if need > 0 {
			buf := make([]byte, need)
			capi.Go_concat(c, 1, buf)
			ids = string(buf)
		}
	}
	var reasons string
	if invalid > 0 {
		buf := make([]byte, invalid)
		capi.Go_concat(c, 2, buf)
		reasons = string(buf)
	}
	idOff, rsOff := 0, 0
	for i := range b.Records {
		m := meta[i*metaWidth : (i+1)*metaWidth]
		r := &b.Records[i]
		r.Outcome = Outcome(m[0])
		r.Err = recordErr(int(m[1]))
		r.Result = Result(m[2])
		l := int(m[3])
		r.Data = data[off : off+l : off+l]
		off += l + sep
		if il := int(m[4]); il > 0 {
			r.ID = ids[idOff : idOff+il]
			idOff += il
		}
		r.ArrivalMs = m[5]
		if rl := int(m[6]); rl > 0 {
			r.Invalid = reasons[rsOff : rsOff+rl]
			rsOff += rl
		}
	}
	return b, encErr
}
