package polytel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// BaggageMember is one name and value of W3C baggage.
type BaggageMember struct {
	Key, Value string
}

type baggageKey struct{}

// BaggageFromContext is the baggage ctx carries (from Extract or ContextWithBaggage).
func BaggageFromContext(ctx context.Context) []BaggageMember {
	if ctx == nil {
		return nil
	}
	b, _ := ctx.Value(baggageKey{}).([]BaggageMember)
	return b
}

// ContextWithBaggage returns a context carrying members as its baggage
// (replacing any), which Inject sends downstream.
func ContextWithBaggage(ctx context.Context, members ...BaggageMember) context.Context {
	return context.WithValue(ctx, baggageKey{}, append([]BaggageMember(nil), members...))
}

// wireContext is the propagated context the core's extract returns and its inject takes.
type wireContext struct {
	TraceID    string      `json:"trace_id"`
	SpanID     string      `json:"span_id"`
	Flags      uint8       `json:"flags"`
	TraceState string      `json:"trace_state"`
	Baggage    [][2]string `json:"baggage"`
}

// Extract reads W3C trace context (traceparent, tracestate) and baggage from
// incoming headers; spans started from the returned context continue the
// caller's trace.
//
//	ctx := polytel.Extract(r.Context(), r.Header)
func Extract(ctx context.Context, h http.Header) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	p := active.Load()
	if p == nil || len(h) == 0 {
		return ctx
	}
	headers := make(map[string]string, len(h))
	for k, vs := range h {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return ctx
	}
	var out string
	err = p.call(func(c cHandle) (err error) {
		out, err = c.extract(headersJSON)
		return err
	})
	var w wireContext
	if err != nil || json.Unmarshal([]byte(out), &w) != nil {
		return ctx
	}
	var sc SpanContext
	if t, err := hex.DecodeString(w.TraceID); err == nil && len(t) == 16 {
		copy(sc.TraceID[:], t)
	}
	if s, err := hex.DecodeString(w.SpanID); err == nil && len(s) == 8 {
		copy(sc.SpanID[:], s)
	}
	if sc.IsValid() {
		sc.Sampled = w.Flags&1 == 1
		sc.Remote = true
		sc.TraceState = w.TraceState
		ctx = ContextWithSpanContext(ctx, sc)
	}
	if len(w.Baggage) > 0 {
		members := make([]BaggageMember, len(w.Baggage))
		for i, kv := range w.Baggage {
			members[i] = BaggageMember{kv[0], kv[1]}
		}
		ctx = context.WithValue(ctx, baggageKey{}, members)
	}
	return ctx
}

// Inject writes the headers that carry ctx's current span (and baggage) to a
// downstream service: traceparent, tracestate, baggage.
//
//	polytel.Inject(ctx, req.Header)
func Inject(ctx context.Context, h http.Header) {
	if ctx == nil || h == nil {
		return
	}
	p := active.Load()
	sc := SpanContextFromContext(ctx)
	bag := BaggageFromContext(ctx)
	if p == nil || (!sc.IsValid() && len(bag) == 0) {
		return
	}
	w := wireContext{TraceState: sc.TraceState, Baggage: make([][2]string, len(bag))}
	if sc.IsValid() {
		w.TraceID, w.SpanID = sc.TraceID.String(), sc.SpanID.String()
		if sc.Sampled {
			w.Flags = 1
		}
	}
	for i, m := range bag {
		w.Baggage[i] = [2]string{m.Key, m.Value}
	}
	contextJSON, err := json.Marshal(w)
	if err != nil {
		return
	}
	var out string
	err = p.call(func(c cHandle) (err error) {
		out, err = c.inject(contextJSON)
		return err
	})
	var headers map[string]string
	if err != nil || json.Unmarshal([]byte(out), &headers) != nil {
		return
	}
	for k, v := range headers {
		h.Set(k, v)
	}
}
