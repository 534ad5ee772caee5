package polytel_test

// GenAI operations as an application uses them, checked on what an
// OTLP/JSON receiver gets and on Stats()["operations"].

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	polytel "github.com/polytel/polytel/bindings/go"
)

// operationStats is Stats()["operations"], by "operation name".
func operationStats(t *testing.T) map[string]map[string]any {
	t.Helper()
	st, err := polytel.Stats()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, e := range list(st["operations"]) {
		m := obj(e)
		out[str(m["operation"])+" "+str(m["name"])] = m
	}
	return out
}

// timeoutError is an error type of the application's.
type timeoutError struct{ what string }

func (e *timeoutError) Error() string { return e.what + " timed out" }

// fetch is a tool as an application writes one: an error leaving it is
// recorded on its operation as on any span.
func fetch(ctx context.Context, url string) (err error) {
	_, op := polytel.StartTool(ctx, "fetch_page")
	defer op.End()
	if strings.Contains(url, "slow") {
		err = &timeoutError{"fetch_page"}
		op.RecordError(err)
		op.SetStatus(polytel.StatusError, err.Error())
	}
	return err
}

func TestOperationsAreNamedAndDescribedByTheCore(t *testing.T) {
	r := configure(t, polytel.Options{ServiceName: "go-genai"})
	ctx, agent := polytel.StartAgent(context.Background(), "research-assistant")
	_, call := polytel.StartLLMCall(ctx, "openai", "gpt-4o", polytel.String("server.address", "api.openai.com"))
	call.RecordUsage(polytel.Usage{InputTokens: 412, OutputTokens: 96})
	call.SetResponseModel("gpt-4o-2024-08-06")
	call.RecordInput(polytel.StringValue("the secret prompt"))
	call.End()
	if err := fetch(ctx, "https://slow.example"); err == nil {
		t.Fatal("the slow fetch fails")
	}
	agent.End()
	shutdown(t)

	byName := map[string]otlpSpan{}
	for _, s := range r.spans() {
		byName[s.Name] = s
	}
	root, chat, tool := byName["invoke_agent research-assistant"], byName["chat gpt-4o"], byName["execute_tool fetch_page"]
	if root.SpanID == "" || chat.SpanID == "" || tool.SpanID == "" {
		t.Fatalf("spans: %+v", r.spans())
	}
	if chat.ParentSpanID != root.SpanID || tool.ParentSpanID != root.SpanID {
		t.Errorf("operations nest through the context: %+v", r.spans())
	}
	if chat.Kind != 3 || tool.Kind != 1 {
		t.Errorf("kinds: chat %d (client), tool %d (internal)", chat.Kind, tool.Kind)
	}
	for key, want := range map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
		"gen_ai.usage.input_tokens": int64(412), "gen_ai.usage.output_tokens": int64(96), "server.address": "api.openai.com",
	} {
		if got := chat.Attributes[key]; got != want {
			t.Errorf("chat %s = %v, want %v (all: %v)", key, got, want, chat.Attributes)
		}
	}
	for key, v := range chat.Attributes {
		if strings.Contains(fmt.Sprint(v), "secret prompt") {
			t.Errorf("content is not captured by default: %s=%v", key, v)
		}
	}
	if tool.StatusCode != 2 || tool.Attributes["error.type"] != "*polytel_test.timeoutError" {
		t.Errorf("the failed tool: status %d, attributes %v", tool.StatusCode, tool.Attributes)
	}
	if m := r.metrics(); m["gen_ai.client.operation.duration"] == nil || m["gen_ai.client.token.usage"] == nil {
		t.Errorf("the core derives the GenAI metrics: %v", m)
	}
}

func TestCapturedContentIsSentWhenOptedIn(t *testing.T) {
	r := configure(t, polytel.Options{GenAICaptureContent: true})
	_, call := polytel.StartLLMCall(context.Background(), "openai", "gpt-4o")
	call.RecordInput(polytel.StringValue("what is the weather in Lyon"))
	call.RecordOutput(polytel.MapValue(polytel.String("role", "assistant"), polytel.String("text", "sunny in Lyon")))
	call.End()
	shutdown(t)
	spans := r.spans()
	if len(spans) != 1 {
		t.Fatalf("spans: %+v", spans)
	}
	all := fmt.Sprint(spans[0].Attributes)
	if !strings.Contains(all, "weather in Lyon") || !strings.Contains(all, "sunny in Lyon") {
		t.Errorf("captured input and output are on the span: %v", spans[0].Attributes)
	}
}

func TestStatsSummarizeEndedOperations(t *testing.T) {
	configure(t, polytel.Options{})
	ctx, agent := polytel.StartAgent(context.Background(), "crawler")
	for _, url := range []string{"https://a.example", "https://slow.example", "https://b.example"} {
		_ = fetch(ctx, url)
	}
	if _, open := operationStats(t)["invoke_agent crawler"]; open {
		t.Error("an operation that has not ended is not summarized yet")
	}
	agent.End()
	ops := operationStats(t)
	tools := ops["execute_tool fetch_page"]
	if num(tools["count"]) != 3 || num(tools["errors"]) != 1 {
		t.Fatalf("tool summary: %v (all: %v)", tools, ops)
	}
	if types := obj(tools["error_types"]); num(types["*polytel_test.timeoutError"]) != 1 {
		t.Errorf("errors by type: %v", types)
	}
	d := obj(tools["duration_s"])
	for _, q := range []string{"p50", "p95", "p99"} {
		if _, ok := d[q].(float64); !ok {
			t.Errorf("duration %s missing: %v", q, d)
		}
	}
	if num(ops["invoke_agent crawler"]["count"]) != 1 {
		t.Errorf("agent summary: %v", ops["invoke_agent crawler"])
	}
}

func TestUnsampledOperationsAreCountedButNotExported(t *testing.T) {
	r := configure(t, polytel.Options{Sampler: "always_off"})
	ctx, agent := polytel.StartAgent(context.Background(), "triage")
	if agent.SpanContext().Sampled {
		t.Fatal("always_off samples nothing")
	}
	_, call := polytel.StartLLMCall(ctx, "acme", "house-model")
	call.RecordUsage(polytel.Usage{InputTokens: 200, OutputTokens: 20})
	call.End()
	agent.End()
	ops := operationStats(t)
	if num(ops["chat house-model"]["count"]) != 1 || num(ops["invoke_agent triage"]["count"]) != 1 {
		t.Errorf("unsampled operations are summarized: %v", ops)
	}
	if num(ops["chat house-model"]["input_tokens"]) != 200 {
		t.Errorf("usage: %v", ops["chat house-model"])
	}
	shutdown(t)
	if spans := r.spans(); len(spans) != 0 {
		t.Errorf("no span is exported: %+v", spans)
	}
	if r.metrics()["gen_ai.client.token.usage"] == nil {
		t.Error("metrics come from every operation, sampled or not")
	}
}

func TestOperationsCountWhenTracesGoNowhere(t *testing.T) {
	r := configure(t, polytel.Options{TracesExporter: "none"})
	_, op := polytel.StartWorkflow(context.Background(), "nightly")
	op.End()
	if num(operationStats(t)["invoke_workflow nightly"]["count"]) != 1 {
		t.Errorf("summarized: %v", operationStats(t))
	}
	shutdown(t)
	if len(r.bodies("/v1/traces")) != 0 {
		t.Error("no traces are exported")
	}
}

func TestOperationsWithoutConfigureAreNoOps(t *testing.T) {
	ctx, agent := polytel.StartAgent(context.Background(), "a")
	_, call := polytel.StartLLMCall(ctx, "openai", "gpt-4o")
	call.RecordUsage(polytel.Usage{InputTokens: 1})
	call.RecordError(errors.New("x"))
	call.End()
	agent.End()
	if call.IsRecording() {
		t.Error("nothing records before Configure")
	}
}
