package polytel

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// TraceID identifies a trace.
type TraceID [16]byte

// SpanID identifies a span within a trace.
type SpanID [8]byte

func (t TraceID) String() string { return hex.EncodeToString(t[:]) }
func (s SpanID) String() string  { return hex.EncodeToString(s[:]) }

// IsValid reports whether the id is set (not all zero).
func (t TraceID) IsValid() bool { return t != TraceID{} }

// IsValid reports whether the id is set (not all zero).
func (s SpanID) IsValid() bool { return s != SpanID{} }

// SpanContext is the identity of a span, local or received from upstream:
// what a child, a link, a log record or a downstream service needs.
type SpanContext struct {
	TraceID    TraceID
	SpanID     SpanID
	Sampled    bool
	Remote     bool
	TraceState string
}

// IsValid reports whether both ids are set, as W3C trace context requires.
func (sc SpanContext) IsValid() bool { return sc.TraceID.IsValid() && sc.SpanID.IsValid() }

// SpanKind is the OTLP span kind.
type SpanKind int

const (
	KindInternal SpanKind = 1
	KindServer   SpanKind = 2
	KindClient   SpanKind = 3
	KindProducer SpanKind = 4
	KindConsumer SpanKind = 5
)

// StatusCode is a span's status.
type StatusCode int

const (
	StatusUnset StatusCode = 0
	StatusOK    StatusCode = 1
	StatusError StatusCode = 2
)

// Link points from a span to another span, in this trace or another.
type Link struct {
	SpanContext SpanContext
	Attributes  []Attribute
}

// SpanOptions are the choices made when a span starts; the zero value is an
// internal span under the context's current span.
type SpanOptions struct {
	// KindInternal when zero.
	Kind SpanKind
	// Links to other spans.
	Links []Link
	// Start a new trace, ignoring the context's current span.
	NewRoot bool
}

// Span is a started span. Its methods are safe for concurrent use, and do
// nothing on a span that does not record (not sampled, traces going nowhere,
// polytel not configured) or that has ended; a nil *Span does nothing either.
type Span struct {
	p   *pipeline
	sc  SpanContext
	rec *recording
}

// recording is what a recording span holds until it ends; attributes, events
// and links are kept as the batch JSON they are sent as.
type recording struct {
	mu        sync.Mutex
	ended     bool
	name      string
	kind      SpanKind
	parent    SpanContext // zero for a root
	start     uint64
	attrs     []byte // object members, without braces
	events    []byte // array elements, without brackets
	links     []byte
	status    StatusCode
	statusMsg string
	// What a GenAI operation keeps (genai.go); nil for other spans.
	genai *genaiOp
}

type spanKey struct{}

// Start starts a span named name as a child of ctx's current span (a root
// without one), with the given attributes, and returns a context in which it
// is the current span. End it with span.End.
//
//	ctx, span := polytel.Start(ctx, "execute_tool fetch_page", polytel.String("gen_ai.tool.name", "fetch_page"))
//	defer span.End()
func Start(ctx context.Context, name string, attrs ...Attribute) (context.Context, *Span) {
	return StartWith(ctx, name, SpanOptions{}, attrs...)
}

// StartWith is Start with a span kind, links, or a new root.
//
//	ctx, span := polytel.StartWith(ctx, "chat gpt-4o", polytel.SpanOptions{Kind: polytel.KindClient})
func StartWith(ctx context.Context, name string, o SpanOptions, attrs ...Attribute) (context.Context, *Span) {
	return start(ctx, name, o, attrs, nil)
}

// start starts a span; with g, a GenAI operation, which records whether
// sampled or not (the core derives metrics and stats from every operation)
// and keeps kind 0 unless one was chosen (the core picks it).
func start(ctx context.Context, name string, o SpanOptions, attrs []Attribute, g *genaiOp) (context.Context, *Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	var parent SpanContext
	if !o.NewRoot {
		parent = SpanContextFromContext(ctx)
	}
	p := active.Load()
	if p == nil || p.plan.Disabled || p.closed.Load() {
		// A no-op that carries its parent's context, so propagation still works.
		return ctx, &Span{sc: parent}
	}
	s := &Span{p: p}
	if parent.IsValid() {
		s.sc.TraceID = parent.TraceID
		s.sc.TraceState = parent.TraceState
	} else {
		parent = SpanContext{}
		s.sc.TraceID = p.newTraceID()
	}
	s.sc.SpanID = p.newSpanID()
	if parent.IsValid() && p.plan.Sampler.ParentBased {
		s.sc.Sampled = parent.Sampled
	} else {
		s.sc.Sampled = binary.BigEndian.Uint64(s.sc.TraceID[8:])>>1 < p.plan.rootBound
	}
	if g != nil || s.sc.Sampled && p.wants(signalSpans) {
		kind := o.Kind
		if kind == 0 && g == nil {
			kind = KindInternal
		}
		r := &recording{name: name, kind: kind, parent: parent, start: p.now(), genai: g}
		r.attrs = appendMembers(r.attrs, attrs)
		for _, l := range o.Links {
			r.appendLink(l)
		}
		s.rec = r
	}
	return context.WithValue(ctx, spanKey{}, s), s
}

func (r *recording) appendLink(l Link) {
	if len(r.links) > 0 {
		r.links = append(r.links, ',')
	}
	r.links = append(r.links, `{"trace_id":"`...)
	r.links = appendHex(r.links, l.SpanContext.TraceID[:])
	r.links = append(r.links, `","span_id":"`...)
	r.links = appendHex(r.links, l.SpanContext.SpanID[:])
	r.links = append(r.links, '"')
	if l.SpanContext.TraceState != "" {
		r.links = append(r.links, `,"trace_state":`...)
		r.links = appendString(r.links, l.SpanContext.TraceState)
	}
	if len(l.Attributes) > 0 {
		r.links = append(r.links, `,"attributes":`...)
		r.links = appendObject(r.links, l.Attributes)
	}
	r.links = append(r.links, '}')
}

// SpanFromContext is ctx's current span, or nil.
func SpanFromContext(ctx context.Context) *Span {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}

// SpanContextFromContext is the identity of ctx's current span (local or
// remote), or the zero SpanContext.
func SpanContextFromContext(ctx context.Context) SpanContext {
	if s := SpanFromContext(ctx); s != nil {
		return s.sc
	}
	return SpanContext{}
}

// ContextWithSpan makes span the current span of the returned context.
func ContextWithSpan(ctx context.Context, span *Span) context.Context {
	return context.WithValue(ctx, spanKey{}, span)
}

// ContextWithSpanContext makes sc (a span of another process, typically) the
// parent of spans started from the returned context.
func ContextWithSpanContext(ctx context.Context, sc SpanContext) context.Context {
	return context.WithValue(ctx, spanKey{}, &Span{sc: sc})
}

// SpanContext is the span's identity.
func (s *Span) SpanContext() SpanContext {
	if s == nil {
		return SpanContext{}
	}
	return s.sc
}

// IsRecording reports whether the span records what is set on it.
func (s *Span) IsRecording() bool {
	if s == nil || s.rec == nil {
		return false
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return !s.rec.ended
}

// live locks and returns the recording, or nil when there is nothing to record into.
func (s *Span) live() *recording {
	if s == nil || s.rec == nil {
		return nil
	}
	s.rec.mu.Lock()
	if s.rec.ended {
		s.rec.mu.Unlock()
		return nil
	}
	return s.rec
}

// SetAttributes sets attributes; a later value for a key replaces an earlier one.
func (s *Span) SetAttributes(attrs ...Attribute) {
	r := s.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	if len(attrs) > 0 && len(r.attrs) > 0 {
		r.attrs = append(r.attrs, ',')
	}
	r.attrs = appendMembers(r.attrs, attrs)
}

// SetName renames the span.
func (s *Span) SetName(name string) {
	if r := s.live(); r != nil {
		r.name = name
		r.mu.Unlock()
	}
}

// AddEvent adds an event at the current time.
func (s *Span) AddEvent(name string, attrs ...Attribute) {
	r := s.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	r.startEvent(s.p.now())
	r.events = append(r.events, `,"name":`...)
	r.events = appendString(r.events, name)
	if len(attrs) > 0 {
		r.events = append(r.events, `,"attributes":`...)
		r.events = appendObject(r.events, attrs)
	}
	r.events = append(r.events, '}')
}

// AddLink links the span to another span.
func (s *Span) AddLink(l Link) {
	if r := s.live(); r != nil {
		r.appendLink(l)
		r.mu.Unlock()
	}
}

// RecordError records err as an exception event: its type is the error's
// Go type, its message err.Error(). It does not set the status.
func (s *Span) RecordError(err error) {
	if err == nil || s == nil || s.rec == nil {
		return
	}
	s.RecordException(fmt.Sprintf("%T", err), err.Error(), "")
}

// RecordException records an exception event from its parts.
func (s *Span) RecordException(typ, message, stacktrace string) {
	r := s.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	r.startEvent(s.p.now())
	r.events = append(r.events, `,"exception":{"type":`...)
	r.events = appendString(r.events, typ)
	r.events = append(r.events, `,"message":`...)
	r.events = appendString(r.events, message)
	if stacktrace != "" {
		r.events = append(r.events, `,"stacktrace":`...)
		r.events = appendString(r.events, stacktrace)
	}
	r.events = append(r.events, "}}"...)
}

func (r *recording) startEvent(time uint64) {
	if len(r.events) > 0 {
		r.events = append(r.events, ',')
	}
	r.events = append(r.events, `{"time":`...)
	r.events = strconv.AppendUint(r.events, time, 10)
}

// SetStatus sets the status; the description goes with StatusError only.
// StatusOK is final, and StatusUnset replaces nothing.
func (s *Span) SetStatus(code StatusCode, description string) {
	r := s.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	if r.status == StatusOK || code == StatusUnset || code > StatusError {
		return
	}
	r.status = code
	if code == StatusError {
		r.statusMsg = description
	} else {
		r.statusMsg = ""
	}
}

// End ends the span; later calls do nothing.
func (s *Span) End() {
	r := s.live()
	if r == nil {
		return
	}
	r.ended = true
	end := s.p.now()
	buf := getScratch()
	*buf = s.appendRecord((*buf)[:0], r, end)
	r.mu.Unlock()
	// A GenAI operation is sent whenever the pipeline is open, sampled or
	// not, and whether traces go anywhere or not.
	if s.p.wants(signalSpans) || r.genai != nil && !s.p.closed.Load() {
		s.p.push(signalSpans, *buf)
	}
	putScratch(buf)
}

// appendRecord writes the span as a `record-spans` record.
func (s *Span) appendRecord(b []byte, r *recording, end uint64) []byte {
	b = append(b, `{"trace_id":"`...)
	b = appendHex(b, s.sc.TraceID[:])
	b = append(b, `","span_id":"`...)
	b = appendHex(b, s.sc.SpanID[:])
	b = append(b, '"')
	if r.parent.IsValid() {
		b = append(b, `,"parent_span_id":"`...)
		b = appendHex(b, r.parent.SpanID[:])
		b = append(b, '"')
		if r.parent.Remote {
			b = append(b, `,"parent_remote":true`...)
		}
	}
	if s.sc.TraceState != "" {
		b = append(b, `,"trace_state":`...)
		b = appendString(b, s.sc.TraceState)
	}
	b = append(b, `,"name":`...)
	b = appendString(b, r.name)
	b = append(b, `,"kind":`...)
	b = strconv.AppendInt(b, int64(r.kind), 10)
	b = append(b, `,"start":`...)
	b = strconv.AppendUint(b, r.start, 10)
	b = append(b, `,"end":`...)
	b = strconv.AppendUint(b, end, 10)
	if len(r.attrs) > 0 {
		b = append(b, `,"attributes":{`...)
		b = append(b, r.attrs...)
		b = append(b, '}')
	}
	if len(r.events) > 0 {
		b = append(b, `,"events":[`...)
		b = append(b, r.events...)
		b = append(b, ']')
	}
	if len(r.links) > 0 {
		b = append(b, `,"links":[`...)
		b = append(b, r.links...)
		b = append(b, ']')
	}
	switch r.status {
	case StatusOK:
		b = append(b, `,"status":{"code":1}`...)
	case StatusError:
		b = append(b, `,"status":{"code":2,"message":`...)
		b = appendString(b, r.statusMsg)
		b = append(b, '}')
	}
	if r.genai != nil {
		if !s.sc.Sampled || !s.p.plan.Traces {
			b = append(b, `,"sampled":false`...)
		}
		b = r.genai.appendJSON(b)
	}
	return append(b, '}')
}

// Ids: splitmix64 seeded with the seed given to the core, drawn as
// wit/polytel.wit specifies, so every host makes the same ids from the same
// seed and the same sequence of span starts.

const gamma = 0x9E3779B97F4A7C15

func splitmix64(state *uint64) uint64 {
	*state += gamma
	z := *state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// draw claims n values of the generator without a lock; returns the state to draw them from.
func (p *pipeline) draw(n uint64) uint64 {
	return p.ids.Add(gamma*n) - gamma*n
}

func (p *pipeline) newTraceID() (id TraceID) {
	state := p.draw(2)
	for {
		hi, lo := splitmix64(&state), splitmix64(&state)
		if hi|lo != 0 {
			binary.BigEndian.PutUint64(id[:8], hi)
			binary.BigEndian.PutUint64(id[8:], lo)
			return id
		}
	}
}

func (p *pipeline) newSpanID() (id SpanID) {
	state := p.draw(1)
	for {
		if v := splitmix64(&state); v != 0 {
			binary.BigEndian.PutUint64(id[:], v)
			return id
		}
	}
}
