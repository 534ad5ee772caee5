package polytel

import (
	"context"
	"strconv"
	"sync/atomic"
)

// InstrumentOption describes an instrument: its unit, description, buckets.
type InstrumentOption func(*instrumentConfig)

type instrumentConfig struct {
	unit, description string
	boundaries        []float64
	exponential       bool
}

// WithUnit sets a UCUM unit: "s", "By", "{token}".
func WithUnit(unit string) InstrumentOption {
	return func(c *instrumentConfig) { c.unit = unit }
}

// WithDescription sets the instrument's description.
func WithDescription(description string) InstrumentOption {
	return func(c *instrumentConfig) { c.description = description }
}

// WithBoundaries sets a histogram's explicit bucket upper bounds, strictly
// increasing (the specification's defaults without it).
func WithBoundaries(boundaries ...float64) InstrumentOption {
	return func(c *instrumentConfig) { c.boundaries = append([]float64(nil), boundaries...) }
}

// WithExponentialBuckets makes a histogram use base-2 exponential buckets.
func WithExponentialBuckets() InstrumentOption {
	return func(c *instrumentConfig) { c.exponential = true }
}

// instrument is registered with the pipeline it is used with: at creation if
// polytel is configured, else at its first measurement (instruments are often
// package-level variables, made before Configure).
type instrument struct {
	desc []byte // the `register-instrument` JSON
	reg  atomic.Pointer[registration]
}

type registration struct {
	p  *pipeline
	id uint32
}

func newInstrument(kind, name string, opts []InstrumentOption) instrument {
	var c instrumentConfig
	for _, o := range opts {
		o(&c)
	}
	b := []byte(`{"name":`)
	b = appendString(b, name)
	b = append(b, `,"kind":`...)
	b = appendString(b, kind)
	b = append(b, `,"unit":`...)
	b = appendString(b, c.unit)
	b = append(b, `,"description":`...)
	b = appendString(b, c.description)
	if c.boundaries != nil {
		b = append(b, `,"boundaries":[`...)
		for i, x := range c.boundaries {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, x)
		}
		b = append(b, ']')
	}
	if c.exponential {
		b = append(b, `,"aggregation":"exponential"`...)
	}
	b = append(b, '}')
	return instrument{desc: b}
}

// init registers the instrument now if polytel is configured, so instruments
// are registered in the order they are made.
func (in *instrument) init() {
	if p := active.Load(); p != nil && p.wants(signalMetrics) {
		in.id(p)
	}
}

// id is the instrument's id with p, registering it if needed.
func (in *instrument) id(p *pipeline) (uint32, bool) {
	if r := in.reg.Load(); r != nil && r.p == p {
		return r.id, true
	}
	var id uint32
	err := p.call(func(c cHandle) (err error) {
		id, err = c.registerInstrument(in.desc)
		return err
	})
	if err != nil {
		return 0, false
	}
	in.reg.Store(&registration{p, id})
	return id, true
}

// measure writes a `record-metrics` record. With exemplar, the context's
// span (if any) goes with it, for an exemplar.
func (in *instrument) measure(ctx context.Context, value float64, attrs []Attribute, exemplar bool) {
	p := active.Load()
	if p == nil || !p.wants(signalMetrics) {
		return
	}
	id, ok := in.id(p)
	if !ok {
		return
	}
	buf := getScratch()
	b := append((*buf)[:0], `{"instrument":`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"value":`...)
	b = appendNumber(b, value)
	if len(attrs) > 0 {
		b = append(b, `,"attributes":`...)
		b = appendObject(b, attrs)
	}
	if exemplar && ctx != nil {
		if sc := SpanContextFromContext(ctx); sc.IsValid() {
			b = append(b, `,"time":`...)
			b = strconv.AppendUint(b, p.now(), 10)
			b = append(b, `,"trace_id":"`...)
			b = appendHex(b, sc.TraceID[:])
			b = append(b, `","span_id":"`...)
			b = appendHex(b, sc.SpanID[:])
			b = append(b, `","sampled":`...)
			b = strconv.AppendBool(b, sc.Sampled)
		}
	}
	b = append(b, '}')
	*buf = b
	p.push(signalMetrics, b)
	putScratch(buf)
}

// Float64Counter is a monotonic sum: agent runs, tool calls, tokens.
type Float64Counter struct{ in instrument }

// Float64UpDownCounter is a sum that goes up and down: active sessions, queue depth.
type Float64UpDownCounter struct{ in instrument }

// Float64Histogram is a distribution: durations, token counts per call.
type Float64Histogram struct{ in instrument }

// Float64Gauge is the last value recorded: a pool size, a temperature.
type Float64Gauge struct{ in instrument }

// Counter makes a monotonic counter. Instruments are safe for concurrent use
// and cheap to keep in package-level variables.
func Counter(name string, opts ...InstrumentOption) *Float64Counter {
	c := &Float64Counter{newInstrument("counter", name, opts)}
	c.in.init()
	return c
}

// UpDownCounter makes a counter that goes up and down.
func UpDownCounter(name string, opts ...InstrumentOption) *Float64UpDownCounter {
	c := &Float64UpDownCounter{newInstrument("up_down_counter", name, opts)}
	c.in.init()
	return c
}

// Histogram makes a histogram (explicit buckets unless WithExponentialBuckets).
func Histogram(name string, opts ...InstrumentOption) *Float64Histogram {
	h := &Float64Histogram{newInstrument("histogram", name, opts)}
	h.in.init()
	return h
}

// Gauge makes a gauge: the last value recorded wins.
func Gauge(name string, opts ...InstrumentOption) *Float64Gauge {
	g := &Float64Gauge{newInstrument("gauge", name, opts)}
	g.in.init()
	return g
}

// Add adds a non-negative increment; negative ones are dropped and counted.
// Inside a sampled span (from ctx) the measurement may become an exemplar.
func (c *Float64Counter) Add(ctx context.Context, incr float64, attrs ...Attribute) {
	c.in.measure(ctx, incr, attrs, true)
}

// Add adds delta, positive or negative.
func (c *Float64UpDownCounter) Add(ctx context.Context, delta float64, attrs ...Attribute) {
	c.in.measure(ctx, delta, attrs, false)
}

// Record records a value. Inside a sampled span (from ctx) it may become an exemplar.
func (h *Float64Histogram) Record(ctx context.Context, value float64, attrs ...Attribute) {
	h.in.measure(ctx, value, attrs, true)
}

// Record records the current value.
func (g *Float64Gauge) Record(ctx context.Context, value float64, attrs ...Attribute) {
	g.in.measure(ctx, value, attrs, false)
}
