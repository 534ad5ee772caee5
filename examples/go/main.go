// An HTTP service traced with polytel: each request is a server span
// (continuing the caller's trace from its traceparent header), the agent
// answering it a GenAI agent run with a tool call and an LLM call inside
// (polytel's operation kit: the core names the spans, writes the gen_ai.*
// attributes and the token, duration and cost metrics), a counter and a
// histogram measure the requests, and slog records carry the trace and span
// ids.
//
// Build the library once, from the repository root:
//
//	cargo build --release --locked -p polytel
//
// then (CGO_LDFLAGS only if CARGO_TARGET_DIR is set):
//
//	cd examples/go
//	CGO_LDFLAGS="-L$CARGO_TARGET_DIR/release" go run . -listen 127.0.0.1:8080
//	curl 'http://127.0.0.1:8080/ask?q=weather'
//
// Where the telemetry goes comes from the environment (a zero Options):
// OTEL_EXPORTER_OTLP_ENDPOINT, POLYTEL_BACKEND=console, HONEYCOMB_API_KEY, …
// (`polytel receive` in another terminal shows what arrives on :4318).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

var (
	requests = polytel.Counter("http.server.requests", polytel.WithUnit("{request}"),
		polytel.WithDescription("Requests served, by route and status."))
	duration = polytel.Histogram("http.server.request.duration", polytel.WithUnit("s"),
		polytel.WithBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
)

// statusRecorder keeps the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// traced wraps a handler in a server span named after its route.
func traced(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := polytel.Extract(r.Context(), r.Header)
		ctx, span := polytel.StartWith(ctx, r.Method+" "+route, polytel.SpanOptions{Kind: polytel.KindServer},
			polytel.String("http.request.method", r.Method),
			polytel.String("http.route", route),
			polytel.String("url.path", r.URL.Path),
		)
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r.WithContext(ctx))
		span.SetAttributes(polytel.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(polytel.StatusError, http.StatusText(rec.status))
		}
		attrs := []polytel.Attribute{polytel.String("http.route", route), polytel.Int("http.response.status_code", rec.status)}
		requests.Add(ctx, 1, attrs...)
		duration.Record(ctx, time.Since(start).Seconds(), attrs...)
	}
}

// ask answers a question the way an agent would: an agent run with a tool
// call and a (pretend) model call inside, each a GenAI operation.
func ask(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query().Get("q")
	if q == "" {
		slog.WarnContext(ctx, "a question is needed", "route", "/ask")
		http.Error(w, "ask something: /ask?q=...", http.StatusBadRequest)
		return
	}
	answer, err := weatherAgent(ctx, q)
	if err != nil {
		slog.ErrorContext(ctx, "the agent failed", "error", err)
		http.Error(w, "the agent failed", http.StatusBadGateway)
		return
	}
	slog.InfoContext(ctx, "answered", "question.length", len(q))
	fmt.Fprintln(w, answer)
}

// fail records err on an operation as any span records an error.
func fail(op *polytel.Operation, err error) error {
	op.RecordError(err)
	op.SetStatus(polytel.StatusError, err.Error())
	return err
}

func weatherAgent(ctx context.Context, q string) (string, error) {
	ctx, agent := polytel.StartAgent(ctx, "weather-assistant")
	defer agent.End()
	forecast, err := tool(ctx, "weather", q)
	if err != nil {
		return "", fail(agent, err)
	}
	return chat(ctx, q, forecast), nil
}

func chat(ctx context.Context, q, forecast string) string {
	_, call := polytel.StartLLMCall(ctx, "example", "example-model",
		polytel.Float64("gen_ai.request.temperature", 0.2))
	defer call.End()
	call.RecordInput(polytel.StringValue(q)) // kept only with GenAICaptureContent
	answer := "It looks like " + forecast + "."
	call.RecordOutput(polytel.StringValue(answer))
	call.SetResponseModel("example-model-2025-01")
	call.RecordUsage(polytel.Usage{InputTokens: int64(len(strings.Fields(q)) + 12), OutputTokens: 9})
	return answer
}

func tool(ctx context.Context, name, q string) (string, error) {
	_, call := polytel.StartTool(ctx, name)
	defer call.End()
	call.RecordInput(polytel.MapValue(polytel.String("q", q)))
	if strings.Contains(q, "fail") {
		return "", fail(call, errors.New("the weather service timed out"))
	}
	call.RecordOutput(polytel.StringValue("sunshine"))
	return "sunshine", nil
}

// routes is the service's handler.
func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ask", traced("/ask", ask))
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "where to serve")
	flag.Parse()

	if err := polytel.Configure(polytel.Options{ServiceName: "go-example", ServiceVersion: "0.1.0"}); err != nil {
		log.Fatal(err)
	}
	slog.SetDefault(slog.New(polytel.NewSlogHandler(nil)))

	server := &http.Server{Addr: *listen, Handler: routes(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}()
	fmt.Fprintf(os.Stderr, "serving on http://%s/ask?q=weather (Ctrl-C to stop)\n", *listen)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := polytel.Shutdown(flushCtx); err != nil {
		log.Print(err)
	}
}
