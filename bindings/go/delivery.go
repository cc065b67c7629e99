package enrich

import (
	"encoding/json"
	"math"
	"sync"

	"example.invalid/libenrich/enrich/internal/capi"
)

// Delivery writes enriched batches into a directory tree as partitioned
// gzip NDJSON objects, like a Firehose stream (enrich_delivery,
// docs/delivery.md): records go to the data, invalid or error prefix
// (enriched-data/year=YYYY/month=MM/day=DD/, error-data/processing-failed/...),
// buffered per prefix and published when a buffer reaches its size or age
// hint, on Flush and at Close.
//
// A Delivery is meant for one goroutine: it delivers one ordered stream
// of batches, and the C delivery is used by one thread at a time. Its
// methods are serialized by a mutex, so concurrent calls are safe, but
// the order of their inputEnd positions is then the callers' problem.
// Close it when done (Pipeline.Close closes it too, publishing its
// buffered records). The C per-object callback is not exposed: list the
// tree after Flush or Close instead.
type Delivery struct {
	p      *Pipeline
	mu     sync.Mutex
	h      capi.Delivery // nil once closed
	resume uint64
	end    uint64
}

// The special nowMs values of Flush.
const (
	// FlushClock: publish the objects due by the real clock (FlushNow).
	FlushClock int64 = -1
	// FlushAll: publish every open object (at the end of a Lambda
	// invocation, say).
	FlushAll int64 = math.MaxInt64
)

// OpenDeliveryConfig is OpenDelivery with the configuration as a
// DeliveryConfig (nil: the defaults).
func (p *Pipeline) OpenDeliveryConfig(root string, config *DeliveryConfig) (*Delivery, error) {
	var raw []byte
	if config != nil {
		var err error
		if raw, err = config.JSON(); err != nil {
			return nil, err
		}
	}
	return p.OpenDelivery(root, raw)
}

// OpenDelivery opens a delivery into the directory root (created if
// needed). config is the JSON configuration of docs/delivery.md (nil:
// the defaults, the seed's prefixes, 5 MB, 300 s; DeliveryConfig.JSON
// writes one); a bad one fails with ErrInvalid whose Detail names the
// member. A second delivery of the same stream (root and stream_name)
// fails with ErrIO while the first is open.
func (p *Pipeline) OpenDelivery(root string, config []byte) (*Delivery, error) {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.h == nil {
		return nil, ErrClosed
	}
	var dh uintptr
	msg := make([]byte, errbufSize)
	if err := p.store.callMsg("enrich_delivery_open", msg, func(capi.Store) int {
		return capi.Delivery_open(p.h, root, config, &dh, msg)
	}); err != nil {
		return nil, err
	}
	h := capi.SwigcptrDelivery(dh)
	off := []uint64{0}
	capi.Delivery_resume_offset(h, off)
	d := &Delivery{p: p, h: h, resume: off[0], end: off[0]}
	p.mu.Lock()
	p.deliveries[d] = struct{}{}
	p.mu.Unlock()
	return d, nil
}

// ResumeOffset is the acknowledged input position found in the state
// file at open (0 without one): replay the input from there.
func (d *Delivery) ResumeOffset() uint64 { return d.resume }

// with runs f on the live handle, under the pipeline's life lock and the
// delivery's own lock.
func (d *Delivery) with(f func(h capi.Delivery) error) error {
	d.p.life.RLock()
	defer d.p.life.RUnlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return ErrClosed
	}
	return f(d.h)
}

// deliveryErr is the error of a failed delivery call: the delivery's own
// errmsg, or for a batch that failed in Run (a malformed envelope, ...)
// the context's.
func deliveryErr(rc int, op string, h capi.Delivery, c capi.Ctx) error {
	switch rc {
	case 0:
		return nil
	case ErrInvalid.Code, ErrIO.Code, ErrNoMem.Code, ErrZlib.Code:
		return codeErr(rc, op, capi.Delivery_errmsg(h))
	}
	if c != nil {
		return codeErr(rc, op, capi.Ctx_errmsg(c))
	}
	return codeErr(rc, op, capi.Delivery_errmsg(h))
}

// Run enriches one batch (retrying transient failures, dead-lettering it
// when they persist) on a context of the pipeline and routes its records.
// inputEnd is the input position just past this batch (non-decreasing: a
// byte offset, a line or batch number...); once every record up to it is
// in published objects it is acknowledged in the state file.
func (d *Delivery) Run(in Input, batch []byte, inputEnd uint64) error {
	return d.with(func(h capi.Delivery) error {
		c, err := d.p.get()
		if err != nil {
			return err
		}
		defer d.p.put(c)
		rc := capi.Delivery_run(h, c, int(in), batch, inputEnd)
		if rc == 0 {
			d.end = inputEnd
		}
		return deliveryErr(rc, "enrich_delivery_run", h, c)
	})
}

// Write routes the records of the last batch run on c (a Context of the
// same pipeline), for callers that run batches themselves. inputEnd is
// as in Run.
func (d *Delivery) Write(c *Context, inputEnd uint64) error {
	if c == nil || c.p != d.p {
		return codeErr(ErrInvalid.Code, "enrich_delivery_write", "the context is of another pipeline")
	}
	return d.with(func(h capi.Delivery) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.h == nil {
			return ErrClosed
		}
		rc := capi.Delivery_write(h, c.h, inputEnd)
		if rc == 0 {
			d.end = inputEnd
		}
		return deliveryErr(rc, "enrich_delivery_write", h, nil)
	})
}

// InputEnd is the inputEnd of the last batch delivered (ResumeOffset at
// first).
func (d *Delivery) InputEnd() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end
}

// Flush publishes the objects whose age reached buffer_seconds at nowMs
// (epoch ms; FlushClock: the real clock, as FlushNow; FlushAll: every
// open object).
func (d *Delivery) Flush(nowMs int64) error {
	return d.with(func(h capi.Delivery) error {
		return deliveryErr(capi.Delivery_flush(h, nowMs), "enrich_delivery_flush", h, nil)
	})
}

// FlushNow publishes the objects whose age reached buffer_seconds by the
// real clock: call it now and then on an idle stream.
func (d *Delivery) FlushNow() error { return d.Flush(FlushClock) }

// close frees the C delivery; the caller holds d.mu and p.life.
func (d *Delivery) close(discard bool) error {
	if d.h == nil {
		return nil
	}
	var flags uint
	if discard {
		flags = capi.DELIVERY_DISCARD
	}
	rc := capi.Delivery_close(d.h, flags) // frees it, whatever rc: no errmsg after
	d.h = nil
	return codeErr(rc, "enrich_delivery_close", "")
}

// Close publishes every open object (discard: drops them instead, and the
// acknowledged position does not move), writes the state and releases
// the stream. An error means the last publication failed; the delivery is
// closed all the same. Closing twice is a no-op.
func (d *Delivery) Close(discard bool) error {
	d.p.life.RLock()
	defer d.p.life.RUnlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return nil
	}
	err := d.close(discard)
	d.p.mu.Lock()
	delete(d.p.deliveries, d)
	d.p.mu.Unlock()
	return err
}

// LatencyStats summarizes the wall time of each Run or Write, in
// microseconds (quantiles within 12.5%, never above Max).
type LatencyStats struct {
	Count uint64 `json:"count"`
	P50   uint64 `json:"p50"`
	P99   uint64 `json:"p99"`
	P999  uint64 `json:"p999"`
	Max   uint64 `json:"max"`
}

// DeliveryMetrics are the counters of a Delivery since open or the last
// reset (docs/delivery.md, Metrics).
type DeliveryMetrics struct {
	Batches        uint64       `json:"batches"`
	EventsIn       uint64       `json:"events_in"`
	InSuccess      uint64       `json:"in_success"`
	InNotFound     uint64       `json:"in_not_found"`
	InNoKey        uint64       `json:"in_no_key"`
	InError        uint64       `json:"in_error"`
	OutData        uint64       `json:"out_data"`
	OutInvalid     uint64       `json:"out_invalid"`
	OutError       uint64       `json:"out_error"`
	OutDeadLetter  uint64       `json:"out_dead_letter"`
	BytesIn        uint64       `json:"bytes_in"`
	BytesOut       uint64       `json:"bytes_out"`
	Objects        uint64       `json:"objects"`
	Retries        uint64       `json:"retries"`
	StateWrites    uint64       `json:"state_writes"`
	InCorrupt      uint64       `json:"in_corrupt"` // of InError: the store was damaged there
	BatchLatencyUs LatencyStats `json:"batch_latency_us"`
}

func (d *Delivery) metrics(format capi.Enum_SS_enrich_metrics_format, reset bool) ([]byte, error) {
	var out []byte
	err := d.with(func(h capi.Delivery) error {
		var flags uint
		if reset {
			flags = capi.METRICS_RESET
		}
		buf := make([]byte, 1024)
		for {
			n := 0
			rc := capi.Delivery_metrics(h, format, flags, buf, &n)
			if rc == 0 {
				out = buf[:n]
				return nil
			}
			err := deliveryErr(rc, "enrich_delivery_metrics", h, nil)
			if !isDstSize(err) || n <= len(buf) {
				return err
			}
			buf = make([]byte, n)
		}
	})
	return out, err
}

// Metrics returns the counters; reset zeroes them after reading them
// (per-interval reporting).
func (d *Delivery) Metrics(reset bool) (*DeliveryMetrics, error) {
	b, err := d.metrics(capi.METRICS_JSON, reset)
	if err != nil {
		return nil, err
	}
	m := &DeliveryMetrics{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// MetricsJSON returns the counters as the C library encodes them.
func (d *Delivery) MetricsJSON(reset bool) ([]byte, error) {
	return d.metrics(capi.METRICS_JSON, reset)
}

// MetricsEMF returns the counters as one CloudWatch Embedded Metric Format
// event (one JSON line, no newline): printed in a Lambda, it becomes
// metrics.
func (d *Delivery) MetricsEMF(reset bool) ([]byte, error) {
	return d.metrics(capi.METRICS_EMF, reset)
}
