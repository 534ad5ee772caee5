package polytel

// The span records GenAI operations write (the "genai" member of
// record-spans in wit/polytel.wit), read from the Go buffer before they are
// handed to the library.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdSpans configures a pipeline whose span buffer is never shipped by its
// timer, so the test can read the records the API wrote.
func holdSpans(t *testing.T, o Options) *pipeline {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	o.Backend, o.Endpoint, o.Protocol = "otlp", srv.URL, "http/json"
	if o.Env == nil {
		o.Env = map[string]string{}
	}
	if err := Configure(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Shutdown(context.Background()) })
	p := active.Load()
	b := &p.bufs[signalSpans]
	b.mu.Lock()
	b.armed = true // push does not start the timer
	b.mu.Unlock()
	return p
}

// heldSpans are the span records waiting in the buffer, as JSON values.
func heldSpans(t *testing.T, p *pipeline) []map[string]any {
	t.Helper()
	b := &p.bufs[signalSpans]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 {
		return nil
	}
	var out []map[string]any
	if err := json.Unmarshal(append(append([]byte(nil), b.buf...), ']'), &out); err != nil {
		t.Fatalf("records %s: %v", b.buf, err)
	}
	return out
}

func genaiOf(rec map[string]any) map[string]any {
	g, _ := rec["genai"].(map[string]any)
	return g
}

func TestOperationRecordsCarryTheGenAIMember(t *testing.T) {
	p := holdSpans(t, Options{})
	ctx, wf := StartWorkflow(context.Background(), "research")
	actx, agent := StartAgent(ctx, "research-assistant", String("gen_ai.agent.id", "agent-7"))
	_, mem := StartMemory(actx, "search_memory", "user-preferences")
	mem.End()
	lctx, llm := StartLLMCall(actx, "openai", "gpt-4o", Float64("gen_ai.request.temperature", 0.2))
	if SpanFromContext(lctx) != llm.Span {
		t.Fatal("StartLLMCall's context carries the operation as the current span")
	}
	llm.RecordUsage(Usage{InputTokens: 400, OutputTokens: 96})
	llm.RecordUsage(Usage{InputTokens: 12, CacheReadTokens: 128})
	llm.SetResponseModel("gpt-4o-2024-08-06")
	llm.RecordInput(StringValue("not kept: capture is off"))
	llm.End()
	llm.RecordUsage(Usage{InputTokens: 1}) // after End: nothing
	_, emb := StartInference(actx, "embeddings", "openai", "text-embedding-3-small")
	emb.RecordUsage(Usage{InputTokens: 64})
	emb.RecordCost(0.00000128)
	emb.SetName("my embeddings")
	emb.End()
	_, tool := StartTool(actx, "fetch_page")
	tool.RecordError(errors.New("timed out"))
	tool.SetStatus(StatusError, "timed out")
	tool.End()
	agent.End()
	wf.End()

	recs := heldSpans(t, p)
	if len(recs) != 6 {
		t.Fatalf("want 6 records, got %d: %v", len(recs), recs)
	}
	want := []map[string]any{
		{"operation": "search_memory", "name": "user-preferences", "agent": "research-assistant"},
		{"operation": "chat", "name": "gpt-4o", "provider": "openai", "agent": "research-assistant",
			"response_model": "gpt-4o-2024-08-06",
			"usage":          map[string]any{"input_tokens": 412.0, "output_tokens": 96.0, "cache_read_tokens": 128.0}},
		{"operation": "embeddings", "name": "text-embedding-3-small", "provider": "openai", "agent": "research-assistant",
			"usage": map[string]any{"input_tokens": 64.0}, "cost": 0.00000128},
		{"operation": "execute_tool", "name": "fetch_page", "agent": "research-assistant"},
		{"operation": "invoke_agent", "name": "research-assistant"},
		{"operation": "invoke_workflow", "name": "research"},
	}
	for i, rec := range recs {
		if g := genaiOf(rec); !reflect.DeepEqual(g, want[i]) {
			t.Errorf("record %d genai:\n got %v\nwant %v", i, g, want[i])
		}
		name := ""
		if i == 2 {
			name = "my embeddings" // the user's name is kept
		}
		if rec["name"] != name || rec["kind"] != 0.0 {
			t.Errorf("record %d: the core names the span and picks its kind: %q %v", i, rec["name"], rec["kind"])
		}
		if _, ok := rec["sampled"]; ok {
			t.Errorf("record %d: a sampled operation carries no \"sampled\": %v", i, rec)
		}
	}
	if recs[1]["parent_span_id"] != agent.SpanContext().SpanID.String() ||
		recs[4]["parent_span_id"] != wf.SpanContext().SpanID.String() {
		t.Errorf("operations nest through the context: %v", recs)
	}
	if a, _ := recs[1]["attributes"].(map[string]any); !reflect.DeepEqual(a, map[string]any{"gen_ai.request.temperature": map[string]any{"double": 0.2}}) {
		t.Errorf("attributes: %v", recs[1]["attributes"])
	}
	if s, _ := recs[3]["status"].(map[string]any); s["code"] != 2.0 || len(recs[3]["events"].([]any)) != 1 {
		t.Errorf("an error is recorded as for any span: %v", recs[3])
	}
	// The order of the members, as wit/polytel.wit lists them.
	raw := func() string {
		b := &p.bufs[signalSpans]
		b.mu.Lock()
		defer b.mu.Unlock()
		return string(b.buf)
	}()
	for _, member := range []string{
		`"genai":{"operation":"chat","name":"gpt-4o","provider":"openai","agent":"research-assistant","response_model":"gpt-4o-2024-08-06","usage":{"input_tokens":412,"output_tokens":96,"cache_read_tokens":128}}}`,
		`"genai":{"operation":"embeddings","name":"text-embedding-3-small","provider":"openai","agent":"research-assistant","usage":{"input_tokens":64},"cost":1.28e-06}}`,
	} {
		if !strings.Contains(raw, member) {
			t.Errorf("records lack %s:\n%s", member, raw)
		}
	}
}

func TestNestedAgentsNameTheNearestEnclosingOne(t *testing.T) {
	p := holdSpans(t, Options{})
	ctx, outer := StartAgent(context.Background(), "planner")
	ictx, inner := StartAgent(ctx, "coder")
	_, call := StartLLMCall(ictx, "anthropic", "claude-sonnet-4")
	call.End()
	inner.End()
	_, after := StartTool(ctx, "search") // back under the outer agent
	after.End()
	outer.End()
	_, outside := StartTool(context.Background(), "search")
	outside.End()
	var agents []any
	for _, rec := range heldSpans(t, p) {
		agents = append(agents, genaiOf(rec)["agent"])
	}
	if want := []any{"coder", "planner", "planner", nil, nil}; !reflect.DeepEqual(agents, want) {
		t.Errorf("agents %v, want %v", agents, want)
	}
}

func TestCaptureOffKeepsAndConvertsNothing(t *testing.T) {
	p := holdSpans(t, Options{})
	if p.plan.GenAICapture {
		t.Fatal("capture is off by default")
	}
	_, op := StartTool(context.Background(), "search")
	big := MapValue(String("q", "wasm"), Slice("docs", StringValue("a"), StringValue("b")), Bytes("blob", make([]byte, 4096)))
	if n := testing.AllocsPerRun(100, func() { op.RecordInput(big); op.RecordOutput(big) }); n != 0 {
		t.Errorf("RecordInput and RecordOutput do not serialize without capture: %v allocations", n)
	}
	op.End()
	g := genaiOf(heldSpans(t, p)[0])
	if _, ok := g["input"]; ok {
		t.Errorf("no input without capture: %v", g)
	}
	if _, ok := g["output"]; ok {
		t.Errorf("no output without capture: %v", g)
	}
}

func TestCaptureOnKeepsContentAsAttributeValues(t *testing.T) {
	p := holdSpans(t, Options{})
	p.plan.GenAICapture = true // as the core's plan says with genai_capture_content
	_, op := StartMemory(context.Background(), "search_memory", "prefs")
	op.RecordInput(StringValue("first"))
	op.RecordInput(StringValue("preferences of user 42")) // the last one wins
	op.RecordOutput(MapValue(String("role", "assistant"), Strings("parts", "a", "b"), Float64("score", 0.5)))
	op.End()
	g := genaiOf(heldSpans(t, p)[0])
	want := map[string]any{
		"operation": "search_memory", "name": "prefs", "input": "preferences of user 42",
		"output": map[string]any{"map": map[string]any{"role": "assistant", "parts": []any{"a", "b"}, "score": map[string]any{"double": 0.5}}},
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("got  %v\nwant %v", g, want)
	}
}

func TestUnsampledOperationsAreSentMarkedUnsampled(t *testing.T) {
	p := holdSpans(t, Options{Sampler: "always_off"})
	ctx, agent := StartAgent(context.Background(), "triage")
	if agent.SpanContext().Sampled || !agent.IsRecording() {
		t.Fatalf("an unsampled operation still records: sampled %v", agent.SpanContext().Sampled)
	}
	_, plain := Start(ctx, "not an operation")
	if plain.IsRecording() {
		t.Error("an ordinary unsampled span records nothing")
	}
	plain.End()
	_, call := StartLLMCall(ctx, "acme", "house-model")
	call.RecordUsage(Usage{InputTokens: 200, OutputTokens: 20})
	call.End()
	agent.End()
	recs := heldSpans(t, p)
	if len(recs) != 2 {
		t.Fatalf("want the 2 operations, got %v", recs)
	}
	for _, rec := range recs {
		if rec["sampled"] != false || genaiOf(rec) == nil {
			t.Errorf("unsampled operation record: %v", rec)
		}
	}
	if genaiOf(recs[0])["agent"] != "triage" {
		t.Errorf("agent: %v", recs[0])
	}
}

func TestOperationsAreSentWhenTracesGoNowhere(t *testing.T) {
	p := holdSpans(t, Options{TracesExporter: "none"})
	if p.plan.Traces {
		t.Fatal("the plan sends traces nowhere")
	}
	_, op := StartWorkflow(context.Background(), "nightly")
	_, plain := Start(context.Background(), "plain")
	plain.End()
	op.End()
	recs := heldSpans(t, p)
	if len(recs) != 1 || recs[0]["sampled"] != false || genaiOf(recs[0])["name"] != "nightly" {
		t.Errorf("records: %v", recs)
	}
}

func TestOperationsAreNoOpsWithoutConfigure(t *testing.T) {
	_ = Shutdown(context.Background())
	ctx, agent := StartAgent(context.TODO(), "a")
	_, call := StartLLMCall(ctx, "openai", "gpt-4o")
	call.RecordUsage(Usage{InputTokens: 1})
	call.SetResponseModel("m")
	call.RecordCost(1)
	call.RecordInput(StringValue("x"))
	call.RecordOutput(StringValue("y"))
	call.SetAttributes(Int("n", 1))
	call.End()
	agent.End()
	if call.IsRecording() || call.SpanContext().IsValid() {
		t.Error("nothing records before Configure")
	}
	var nilOp *Operation
	nilOp.RecordUsage(Usage{InputTokens: 1})
	nilOp.RecordInput(StringValue("x"))
	nilOp.SetResponseModel("m")
	nilOp.RecordCost(1)
}

func TestOperationMethodsAreSafeForConcurrentUse(t *testing.T) {
	p := holdSpans(t, Options{})
	p.plan.GenAICapture = true
	_, op := StartLLMCall(context.Background(), "openai", "gpt-4o")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				op.RecordUsage(Usage{InputTokens: 1, OutputTokens: 2})
				op.SetResponseModel("gpt-4o-2024-08-06")
				op.RecordCost(float64(i))
				op.RecordInput(IntValue(i))
				op.SetAttributes(Int("i", i))
			}
		})
	}
	time.Sleep(time.Millisecond)
	wg.Wait()
	op.End()
	u := genaiOf(heldSpans(t, p)[0])["usage"].(map[string]any)
	if u["input_tokens"] != 800.0 || u["output_tokens"] != 1600.0 {
		t.Errorf("usage adds up: %v", u)
	}
}
