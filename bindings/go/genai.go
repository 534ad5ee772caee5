package polytel

import (
	"context"
	"math"
	"strconv"
)

// GenAI operations: LLM calls, agent runs, tool calls, workflow runs and
// memory operations. Each is a span (ids, sampling, clock and context as
// Start's) that also keeps the operation's fields and sends them with its
// record; the core names the span, writes the semantic conventions'
// attributes, prices the usage, redacts captured content, and derives the
// metrics and the Stats summary from every operation, sampled or not.

// Operation is a started GenAI operation. It is a span: End, SetAttributes,
// AddEvent, RecordError, SetStatus, SetName, SpanContext, … work on it, and
// the context its Start function returns carries it as the current span.
// Like a span's, its methods are safe for concurrent use and do nothing once
// it has ended or when polytel is not configured.
type Operation struct {
	*Span
}

// Usage is the token usage of an LLM call. A zero field is not recorded.
// Input tokens include cache reads and writes.
type Usage struct {
	InputTokens      int64
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	ReasoningTokens  int64
}

// genaiOp is what an operation keeps until it ends.
type genaiOp struct {
	operation     string
	name          string
	provider      string
	agent         string // the nearest enclosing agent's name
	responseModel string
	usage         [5]int64
	given         uint8 // bit i: usage[i] was recorded
	cost          float64
	hasCost       bool
	input         []byte // attribute-value JSON; only with capture on
	output        []byte
}

var usageNames = [5]string{"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"}

// agentKey carries the name of the agent operation current in a context.
type agentKey struct{}

// StartLLMCall starts a chat call to a provider's model ("openai",
// "gpt-4o") as a child of ctx's current span, and returns a context in which
// it is the current span. End it with End.
//
//	ctx, call := polytel.StartLLMCall(ctx, "openai", "gpt-4o")
//	defer call.End()
//	call.RecordUsage(polytel.Usage{InputTokens: 412, OutputTokens: 96})
func StartLLMCall(ctx context.Context, provider, model string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, "chat", model, provider, false, attrs)
}

// StartInference is StartLLMCall for another inference operation:
// "text_completion", "embeddings", "generate_content", ….
func StartInference(ctx context.Context, operation, provider, model string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, operation, model, provider, false, attrs)
}

// StartAgent starts an agent run (invoke_agent). Operations started from the
// returned context, at any depth, carry the agent's name.
func StartAgent(ctx context.Context, name string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, "invoke_agent", name, "", true, attrs)
}

// StartTool starts a tool call (execute_tool).
func StartTool(ctx context.Context, name string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, "execute_tool", name, "", false, attrs)
}

// StartWorkflow starts a workflow run (invoke_workflow).
func StartWorkflow(ctx context.Context, name string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, "invoke_workflow", name, "", false, attrs)
}

// StartMemory starts a memory operation ("search_memory",
// "update_memory", …) on a store.
func StartMemory(ctx context.Context, operation, store string, attrs ...Attribute) (context.Context, *Operation) {
	return startOperation(ctx, operation, store, "", false, attrs)
}

func startOperation(ctx context.Context, operation, name, provider string, agent bool, attrs []Attribute) (context.Context, *Operation) {
	if ctx == nil {
		ctx = context.Background()
	}
	enclosing, _ := ctx.Value(agentKey{}).(string)
	g := &genaiOp{operation: operation, name: name, provider: provider, agent: enclosing}
	ctx, s := start(ctx, "", SpanOptions{}, attrs, g)
	if agent {
		ctx = context.WithValue(ctx, agentKey{}, name)
	}
	return ctx, &Operation{s}
}

// live locks and returns the operation's fields, or nil when there is
// nothing to record into.
func (o *Operation) live() (*recording, *genaiOp) {
	if o == nil {
		return nil, nil
	}
	r := o.Span.live()
	if r == nil {
		return nil, nil
	}
	if r.genai == nil {
		r.mu.Unlock()
		return nil, nil
	}
	return r, r.genai
}

// RecordUsage adds token counts to the operation's totals (calling it once
// with the input and once with the output tokens records both).
func (o *Operation) RecordUsage(u Usage) {
	r, g := o.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	for i, n := range [5]int64{u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, u.ReasoningTokens} {
		if n != 0 {
			g.usage[i] += n
			g.given |= 1 << i
		}
	}
}

// SetResponseModel records the model that answered ("gpt-4o-2024-08-06").
func (o *Operation) SetResponseModel(model string) {
	if r, g := o.live(); r != nil {
		g.responseModel = model
		r.mu.Unlock()
	}
}

// RecordCost records what the operation cost in US dollars, when the
// application knows it; otherwise the core prices the usage from its price
// table. A later call replaces an earlier one; a NaN or infinite cost is
// ignored.
func (o *Operation) RecordCost(usd float64) {
	if math.IsNaN(usd) || math.IsInf(usd, 0) {
		return
	}
	if r, g := o.live(); r != nil {
		g.cost, g.hasCost = usd, true
		r.mu.Unlock()
	}
}

// RecordInput records the operation's input (a prompt, a tool's arguments,
// a memory query), kept only when content capture is on
// (Options.GenAICaptureContent); otherwise it does nothing at all. The core
// redacts it before it leaves the process.
func (o *Operation) RecordInput(v Value) { o.capture(v, false) }

// RecordOutput records the operation's output (a response, a tool's result,
// memory records), as RecordInput does.
func (o *Operation) RecordOutput(v Value) { o.capture(v, true) }

func (o *Operation) capture(v Value, output bool) {
	if o == nil || o.Span == nil || o.p == nil || !o.p.plan.GenAICapture {
		return
	}
	r, g := o.live()
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	if output {
		g.output = v.appendJSON(g.output[:0])
	} else {
		g.input = v.appendJSON(g.input[:0])
	}
}

// appendJSON writes the "genai" member of the span record (wit/polytel.wit,
// record-spans), with a leading comma.
func (g *genaiOp) appendJSON(b []byte) []byte {
	b = append(b, `,"genai":{"operation":`...)
	b = appendString(b, g.operation)
	b = append(b, `,"name":`...)
	b = appendString(b, g.name)
	if g.provider != "" {
		b = append(b, `,"provider":`...)
		b = appendString(b, g.provider)
	}
	if g.agent != "" {
		b = append(b, `,"agent":`...)
		b = appendString(b, g.agent)
	}
	if g.responseModel != "" {
		b = append(b, `,"response_model":`...)
		b = appendString(b, g.responseModel)
	}
	if g.given != 0 {
		b = append(b, `,"usage":{`...)
		first := true
		for i, n := range g.usage {
			if g.given&(1<<i) == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, usageNames[i]...)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, n, 10)
		}
		b = append(b, '}')
	}
	if g.hasCost {
		b = append(b, `,"cost":`...)
		b = appendNumber(b, g.cost)
	}
	if g.input != nil {
		b = append(b, `,"input":`...)
		b = append(b, g.input...)
	}
	if g.output != nil {
		b = append(b, `,"output":`...)
		b = append(b, g.output...)
	}
	return append(b, '}')
}
