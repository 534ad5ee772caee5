// Package polytel is the Go binding of polytel: traces, metrics and logs for
// AI and agent applications, sent as OTLP (or a vendor's own format) to any
// backend through one-line presets.
//
// It runs the same telemetry core as every other polytel binding (a
// WebAssembly component embedded by the Rust host library, linked in through
// cgo), so the same calls give the same bytes on the wire from every
// language. The Go side keeps the API, the current span (in a
// context.Context), the clock and the ids; records are buffered in Go and
// handed to the library one batch at a time, and the library exports them
// from a thread of its own, so the application never waits on a backend.
//
//	if err := polytel.Configure(polytel.Options{
//		Backend:         "honeycomb",
//		HoneycombAPIKey: os.Getenv("HONEYCOMB_API_KEY"),
//		ServiceName:     "research-agent",
//	}); err != nil {
//		log.Fatal(err)
//	}
//	defer polytel.Shutdown(context.Background())
//
//	ctx, agent := polytel.StartAgent(ctx, "research")
//	defer agent.End()
//	_, call := polytel.StartLLMCall(ctx, "openai", "gpt-4o")
//	call.RecordUsage(polytel.Usage{InputTokens: 412, OutputTokens: 96})
//	call.End()
//
// Everything is safe for concurrent use from many goroutines. Before
// Configure (and after Shutdown) every call is a cheap no-op.
//
// Build the library first (from the repository root):
//
//	cargo build --release --locked -p polytel
//
// and, when CARGO_TARGET_DIR is set, point cgo at it:
// CGO_LDFLAGS="-L$CARGO_TARGET_DIR/release". See README.md.
package polytel
