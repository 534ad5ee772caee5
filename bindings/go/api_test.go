package polytel_test

// The API as a new user would use it: configure, spans through a context,
// metrics, slog logs, propagation, flush and shutdown; checked on what an
// OTLP/JSON receiver gets.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// configure points polytel at a fresh receiver (OTLP/JSON) with an empty
// environment, and shuts it down when the test ends.
func configure(t *testing.T, o polytel.Options) *receiver {
	t.Helper()
	r := newReceiver(t)
	o.Backend = "otlp"
	o.Endpoint = r.URL
	o.Protocol = "http/json"
	if o.Env == nil {
		o.Env = map[string]string{}
	}
	if err := polytel.Configure(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = polytel.Shutdown(context.Background()) })
	return r
}

func shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := polytel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSpansNestThroughTheContext(t *testing.T) {
	r := configure(t, polytel.Options{ServiceName: "go-agent", ServiceVersion: "1.0.0"})
	ctx := context.Background()

	ctx, agent := polytel.Start(ctx, "invoke_agent research", polytel.String("gen_ai.agent.name", "research"))
	if !agent.IsRecording() || !agent.SpanContext().IsValid() {
		t.Fatalf("a configured span records: %+v", agent.SpanContext())
	}
	llmCtx, llm := polytel.StartWith(ctx, "chat gpt-4o", polytel.SpanOptions{Kind: polytel.KindClient},
		polytel.String("gen_ai.request.model", "gpt-4o"),
		polytel.Int("gen_ai.usage.input_tokens", 412),
		polytel.Float64("gen_ai.request.temperature", 0.2),
		polytel.Bool("gen_ai.request.stream", false),
		polytel.Strings("gen_ai.response.finish_reasons", "stop"),
		polytel.Bytes("blob", []byte{0, 1, 2}),
		polytel.Map("nested", polytel.Int("n", -7)),
	)
	if polytel.SpanFromContext(llmCtx) != llm {
		t.Fatal("Start's context carries the new span")
	}
	llm.SetAttributes(polytel.Int("gen_ai.usage.output_tokens", 96))
	llm.AddEvent("gen_ai.content.chunk", polytel.Int("index", 0))
	llm.SetStatus(polytel.StatusOK, "")
	llm.End()
	llm.End() // a second End does nothing

	_, tool := polytel.Start(ctx, "execute_tool fetch_page")
	tool.RecordError(fmt.Errorf("fetch: %w", os.ErrDeadlineExceeded))
	tool.SetStatus(polytel.StatusError, "timed out after 30s")
	tool.AddLink(polytel.Link{SpanContext: llm.SpanContext(), Attributes: []polytel.Attribute{polytel.String("reason", "requested_by")}})
	tool.End()
	agent.End()
	shutdown(t)

	spans := r.spans()
	if len(spans) != 3 {
		t.Fatalf("want 3 spans, got %d: %+v", len(spans), spans)
	}
	byName := map[string]otlpSpan{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, chat, fetch := byName["invoke_agent research"], byName["chat gpt-4o"], byName["execute_tool fetch_page"]
	if root.ParentSpanID != "" || chat.ParentSpanID != root.SpanID || fetch.ParentSpanID != root.SpanID {
		t.Errorf("parents: root %q, chat %q, fetch %q (root id %s)", root.ParentSpanID, chat.ParentSpanID, fetch.ParentSpanID, root.SpanID)
	}
	for _, s := range spans {
		if s.TraceID != root.TraceID {
			t.Errorf("%s is in trace %s, not %s", s.Name, s.TraceID, root.TraceID)
		}
	}
	if root.Resource["service.name"] != "go-agent" || root.Resource["telemetry.sdk.language"] != "go" {
		t.Errorf("resource: %v", root.Resource)
	}
	if chat.Kind != 3 || root.Kind != 1 {
		t.Errorf("kinds: chat %d, root %d", chat.Kind, root.Kind)
	}
	want := map[string]any{
		"gen_ai.request.model":           "gpt-4o",
		"gen_ai.usage.input_tokens":      int64(412),
		"gen_ai.usage.output_tokens":     int64(96),
		"gen_ai.request.temperature":     0.2,
		"gen_ai.request.stream":          false,
		"gen_ai.response.finish_reasons": []any{"stop"},
		"blob":                           "bytes:AAEC",
		"nested":                         map[string]any{"n": int64(-7)},
	}
	if got := fmt.Sprint(chat.Attributes); got != fmt.Sprint(want) {
		t.Errorf("attributes:\n got %s\nwant %s", got, fmt.Sprint(want))
	}
	if len(chat.Events) != 1 || chat.Events[0]["name"] != "gen_ai.content.chunk" || chat.StatusCode != 1 {
		t.Errorf("chat events %v, status %d", chat.Events, chat.StatusCode)
	}
	if fetch.StatusCode != 2 || fetch.StatusMessage != "timed out after 30s" {
		t.Errorf("fetch status %d %q", fetch.StatusCode, fetch.StatusMessage)
	}
	if len(fetch.Events) != 1 || fetch.Events[0]["name"] != "exception" {
		t.Fatalf("fetch events: %v", fetch.Events)
	}
	ex := obj(fetch.Events[0]["attributes"])
	if ex["exception.type"] != "*fmt.wrapError" || ex["exception.message"] != "fetch: i/o timeout" {
		t.Errorf("exception: %v", ex)
	}
	if len(fetch.Links) != 1 || fetch.Links[0]["spanId"] != chat.SpanID {
		t.Errorf("links: %v", fetch.Links)
	}
}

func TestMetricsAndSlogLogs(t *testing.T) {
	// Instruments are usually package-level: made before Configure.
	calls := polytel.Counter("agent.tool.calls", polytel.WithUnit("{call}"), polytel.WithDescription("Tool calls."))
	r := configure(t, polytel.Options{ServiceName: "go-metrics"})
	duration := polytel.Histogram("gen_ai.client.operation.duration", polytel.WithUnit("s"), polytel.WithBoundaries(0.1, 1, 10))
	active := polytel.UpDownCounter("agent.sessions.active")
	queue := polytel.Gauge("agent.queue.length")
	logger := slog.New(polytel.NewSlogHandler(&slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx, span := polytel.Start(context.Background(), "invoke_agent")
	calls.Add(ctx, 1, polytel.String("gen_ai.tool.name", "search"))
	calls.Add(ctx, 2, polytel.String("gen_ai.tool.name", "search"))
	duration.Record(ctx, 0.73, polytel.String("gen_ai.request.model", "gpt-4o"))
	active.Add(ctx, 1)
	active.Add(ctx, -1)
	queue.Record(ctx, 4)
	logger.InfoContext(ctx, "planning started", "attempt", 2, slog.Group("http", "method", "GET"), polytel.EventName("agent.plan"))
	logger.With("agent", "planner").WarnContext(context.Background(), "no span here")
	logger.Debug("debug too")
	span.End()
	shutdown(t)

	m := r.metrics()
	for _, name := range []string{"agent.tool.calls", "gen_ai.client.operation.duration", "agent.sessions.active", "agent.queue.length"} {
		if m[name] == nil {
			t.Errorf("metric %s missing; got %v", name, m)
		}
	}
	sum := obj(m["agent.tool.calls"]["sum"])
	points := list(sum["dataPoints"])
	if len(points) != 1 || obj(points[0])["asDouble"] != 3.0 {
		t.Errorf("agent.tool.calls points: %v", points)
	}
	if len(list(obj(points[0])["exemplars"])) == 0 {
		t.Errorf("a measurement inside a sampled span leaves an exemplar: %v", points[0])
	}
	hist := list(obj(m["gen_ai.client.operation.duration"]["histogram"])["dataPoints"])
	if len(hist) != 1 || num(obj(hist[0])["count"]) != 1 {
		t.Errorf("histogram points: %v", hist)
	}

	logs := r.logs()
	if len(logs) != 3 {
		t.Fatalf("want 3 log records, got %+v", logs)
	}
	first := logs[0]
	if first.Body != "planning started" || first.Severity != 9 || first.SeverityText != "INFO" || first.EventName != "agent.plan" {
		t.Errorf("first record: %+v", first)
	}
	if first.TraceID != span.SpanContext().TraceID.String() || first.SpanID != span.SpanContext().SpanID.String() {
		t.Errorf("trace correlation from the context: %+v vs %+v", first, span.SpanContext())
	}
	if fmt.Sprint(first.Attributes) != fmt.Sprint(map[string]any{"attempt": int64(2), "http": map[string]any{"method": "GET"}}) {
		t.Errorf("attributes: %v", first.Attributes)
	}
	if logs[1].TraceID != "" || logs[1].Severity != 13 || logs[1].Attributes["agent"] != "planner" {
		t.Errorf("second record: %+v", logs[1])
	}
	if logs[2].Severity != 5 {
		t.Errorf("third record: %+v", logs[2])
	}
}

func TestInjectAndExtractCarryTheTrace(t *testing.T) {
	configure(t, polytel.Options{})
	ctx := polytel.ContextWithBaggage(context.Background(), polytel.BaggageMember{Key: "user", Value: "42"})
	ctx, client := polytel.StartWith(ctx, "GET /tool", polytel.SpanOptions{Kind: polytel.KindClient})
	defer client.End()
	h := http.Header{}
	polytel.Inject(ctx, h)
	sc := client.SpanContext()
	if want := "00-" + sc.TraceID.String() + "-" + sc.SpanID.String() + "-01"; h.Get("traceparent") != want {
		t.Fatalf("traceparent %q, want %q (headers %v)", h.Get("traceparent"), want, h)
	}
	if h.Get("baggage") != "user=42" {
		t.Errorf("baggage header %q", h.Get("baggage"))
	}

	// The downstream side.
	in := polytel.Extract(context.Background(), h)
	remote := polytel.SpanContextFromContext(in)
	if !remote.Remote || remote.TraceID != sc.TraceID || remote.SpanID != sc.SpanID || !remote.Sampled {
		t.Fatalf("extracted %+v from %v", remote, h)
	}
	if b := polytel.BaggageFromContext(in); len(b) != 1 || b[0] != (polytel.BaggageMember{Key: "user", Value: "42"}) {
		t.Errorf("baggage %v", b)
	}
	_, server := polytel.StartWith(in, "POST /tool", polytel.SpanOptions{Kind: polytel.KindServer})
	if server.SpanContext().TraceID != sc.TraceID {
		t.Errorf("the server span continues the trace")
	}
	server.End()

	// Nothing to carry: no headers.
	empty := http.Header{}
	polytel.Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("no span, no baggage, no headers: %v", empty)
	}
	if polytel.SpanContextFromContext(polytel.Extract(context.Background(), http.Header{"Traceparent": {"garbage"}})).IsValid() {
		t.Error("a bad traceparent is no parent")
	}
}

func TestForceFlushDeliversWithoutShuttingDown(t *testing.T) {
	r := configure(t, polytel.Options{ScheduleDelay: time.Hour})
	_, s := polytel.Start(context.Background(), "flushed")
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := polytel.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(r.spans()); n != 1 {
		t.Fatalf("after ForceFlush the receiver has %d spans", n)
	}
	stats, err := polytel.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(obj(stats["spans"])["exported"]) != "1" {
		t.Errorf("stats: %v", stats)
	}
	desc, err := polytel.Describe()
	if err != nil || !strings.Contains(desc, r.URL) {
		t.Errorf("describe %q: %v", desc, err)
	}
}

func TestABadConfigurationFailsWithOneSentence(t *testing.T) {
	err := polytel.Configure(polytel.Options{Backend: "honeycomb", Env: map[string]string{}})
	if err == nil {
		t.Fatal("honeycomb without a key must fail")
	}
	for _, want := range []string{"honeycomb_api_key", "HONEYCOMB_API_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	err = polytel.Configure(polytel.Options{Backend: "no-such-backend", Env: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "no-such-backend") {
		t.Errorf("unknown backend: %v", err)
	}
	err = polytel.Configure(polytel.Options{Settings: map[string]string{"not_an_option": "x"}, Env: map[string]string{}})
	if err == nil {
		t.Error("an unknown setting is refused")
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const key = "hcaik_0123456789abcdefghijklmnopqrstuvwxyz"
	o := polytel.Options{
		Backend:         "honeycomb",
		HoneycombAPIKey: key,
		Headers:         map[string]string{"authorization": "Bearer " + key},
		Settings:        map[string]string{"langfuse_secret_key": key, "honeycomb_region": "eu"},
		Env:             map[string]string{"HONEYCOMB_API_KEY": key},
	}
	for _, s := range []string{o.String(), fmt.Sprintf("%v %+v %#v %s", o, o, o, o), mustJSON(t, o), slogText(o)} {
		if strings.Contains(s, key) || strings.Contains(s, key[8:]) {
			t.Fatalf("a secret printed: %s", s)
		}
	}
	if !strings.Contains(o.String(), "hcai… (42 chars)") || !strings.Contains(o.String(), "honeycomb_region: \"eu\"") {
		t.Errorf("String: %s", o)
	}
	err := polytel.Configure(polytel.Options{Backend: "honeycomb", HoneycombAPIKey: "not a key!", Env: map[string]string{}})
	if err != nil && strings.Contains(err.Error(), "not a key!") {
		t.Errorf("error shows the key: %v", err)
	}
	if err == nil {
		_ = polytel.Shutdown(context.Background())
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func slogText(v any) string {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("options", "o", v)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("options", "o", v)
	return b.String()
}

func TestWithoutConfigureEverythingIsANoOp(t *testing.T) {
	_ = polytel.Shutdown(context.Background())
	ctx, s := polytel.Start(context.Background(), "nothing")
	s.SetAttributes(polytel.String("k", "v"))
	s.AddEvent("e")
	s.RecordError(errors.New("x"))
	s.SetStatus(polytel.StatusError, "x")
	s.End()
	if s.IsRecording() || s.SpanContext().IsValid() {
		t.Error("an unconfigured span neither records nor has ids")
	}
	var nilSpan *polytel.Span
	nilSpan.End()
	nilSpan.SetAttributes(polytel.Int("n", 1))
	polytel.Counter("c").Add(ctx, 1)
	polytel.Histogram("h").Record(ctx, 1)
	slog.New(polytel.NewSlogHandler(nil)).InfoContext(ctx, "dropped")
	h := http.Header{}
	polytel.Inject(ctx, h)
	if len(h) != 0 {
		t.Errorf("headers %v", h)
	}
	if err := polytel.ForceFlush(context.Background()); err != nil {
		t.Error(err)
	}
	if _, err := polytel.Stats(); err == nil {
		t.Error("Stats without Configure reports it")
	}
}

func TestDisabledAndSampledOut(t *testing.T) {
	r := configure(t, polytel.Options{Disabled: true})
	parent := polytel.ContextWithSpanContext(context.Background(), polytel.SpanContext{
		TraceID: polytel.TraceID{1}, SpanID: polytel.SpanID{2}, Sampled: true, Remote: true,
	})
	ctx, s := polytel.Start(parent, "disabled")
	if s.IsRecording() || s.SpanContext().SpanID != (polytel.SpanID{2}) {
		t.Errorf("disabled: a no-op span carrying its parent's context, got %+v", s.SpanContext())
	}
	s.End()
	h := http.Header{}
	polytel.Inject(ctx, h)
	shutdown(t)
	if len(r.spans()) != 0 {
		t.Error("disabled telemetry sends nothing")
	}

	r = configure(t, polytel.Options{Sampler: "always_off"})
	ctx, s = polytel.Start(context.Background(), "sampled out")
	if s.IsRecording() || !s.SpanContext().IsValid() || s.SpanContext().Sampled {
		t.Errorf("sampled out: ids but no recording, got %+v", s.SpanContext())
	}
	h = http.Header{}
	polytel.Inject(ctx, h)
	if !strings.HasSuffix(h.Get("traceparent"), "-00") {
		t.Errorf("an unsampled span propagates flags 00: %v", h)
	}
	s.End()
	shutdown(t)
	if len(r.spans()) != 0 {
		t.Error("sampled-out spans are not sent")
	}
}

func TestReconfigureReplacesThePipeline(t *testing.T) {
	first := configure(t, polytel.Options{})
	_, s := polytel.Start(context.Background(), "first")
	s.End()
	second := configure(t, polytel.Options{})
	_, s = polytel.Start(context.Background(), "second")
	s.End()
	shutdown(t)
	if len(first.spans()) != 1 || first.spans()[0].Name != "first" {
		t.Errorf("the first pipeline is flushed when replaced: %+v", first.spans())
	}
	if len(second.spans()) != 1 || second.spans()[0].Name != "second" {
		t.Errorf("second: %+v", second.spans())
	}
}
