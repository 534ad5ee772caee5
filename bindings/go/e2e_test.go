package polytel_test

// End to end: an agent workload through the Go API to `polytel receive` (the
// Rust receiver, decoding real OTLP/HTTP protobuf) and to a real
// OpenTelemetry Collector over OTLP/HTTP and OTLP/gRPC.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// workloadIDs are the ids the checks need.
type workloadIDs struct{ trace, agent, llm, tool string }

// agentWorkload is a small agent run: spans of several kinds, an error,
// metrics and logs.
func agentWorkload() workloadIDs {
	calls := polytel.Counter("agent.tool.calls", polytel.WithUnit("{call}"))
	duration := polytel.Histogram("gen_ai.client.operation.duration", polytel.WithUnit("s"), polytel.WithBoundaries(0.1, 1, 10))
	logger := slog.New(polytel.NewSlogHandler(nil))

	ctx, agent := polytel.Start(context.Background(), "invoke_agent planner", polytel.String("gen_ai.agent.name", "planner"))
	llmCtx, llm := polytel.StartWith(ctx, "chat gpt-4o", polytel.SpanOptions{Kind: polytel.KindClient},
		polytel.String("gen_ai.request.model", "gpt-4o"))
	llm.SetAttributes(polytel.Int("gen_ai.usage.input_tokens", 412))
	duration.Record(llmCtx, 0.73, polytel.String("gen_ai.request.model", "gpt-4o"))
	llm.End()

	toolCtx, tool := polytel.Start(ctx, "execute_tool fetch_page", polytel.String("gen_ai.tool.name", "fetch_page"))
	calls.Add(toolCtx, 1, polytel.String("gen_ai.tool.name", "fetch_page"), polytel.String("outcome", "error"))
	logger.ErrorContext(toolCtx, "fetch_page timed out", "attempt", 3)
	tool.RecordError(errors.New("timed out after 30s"))
	tool.SetStatus(polytel.StatusError, "timed out after 30s")
	tool.End()
	logger.InfoContext(ctx, "planning done")
	agent.End()
	return workloadIDs{
		trace: agent.SpanContext().TraceID.String(),
		agent: agent.SpanContext().SpanID.String(),
		llm:   llm.SpanContext().SpanID.String(),
		tool:  tool.SpanContext().SpanID.String(),
	}
}

// polytelBin finds the `polytel` command: $POLYTEL_BIN, else release/polytel
// under $CARGO_TARGET_DIR, the repository's target/, or $POLYTEL_CACHE/target.
func polytelBin(t *testing.T) string {
	if p := os.Getenv("POLYTEL_BIN"); p != "" {
		return p
	}
	var dirs []string
	if d := os.Getenv("CARGO_TARGET_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(repoRoot, "target"))
	cache := os.Getenv("POLYTEL_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "polytel")
		}
	}
	dirs = append(dirs, filepath.Join(cache, "target"))
	for _, d := range dirs {
		p := filepath.Join(d, "release", "polytel")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("the polytel command is not built (looked in %v); run `cargo build --release --locked -p polytel` — it is required for this test", dirs)
	return ""
}

func TestEndToEndToPolytelReceive(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(polytelBin(t), "receive", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var mu sync.Mutex
	var lines []map[string]any
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				mu.Lock()
				lines = append(lines, m)
				mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	waitFor(t, "polytel receive to listen", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	if err := polytel.Configure(polytel.Options{
		Backend:     "otlp",
		Endpoint:    fmt.Sprintf("http://127.0.0.1:%d", port),
		ServiceName: "go-e2e",
		Env:         map[string]string{},
	}); err != nil {
		t.Fatal(err)
	}
	ids := agentWorkload()
	shutdown(t)

	var spans, logs []map[string]any
	var metrics string
	waitFor(t, "3 spans, 2 log records and the metrics", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		spans, logs, metrics = nil, nil, ""
		for _, l := range lines {
			switch {
			case l["resourceMetrics"] != nil:
				b, _ := json.Marshal(l)
				metrics += string(b)
			case l["level"] != nil && l["message"] != nil:
				logs = append(logs, l)
			case l["span_id"] != nil && l["name"] != nil:
				spans = append(spans, l)
			}
		}
		return len(spans) >= 3 && len(logs) >= 2 && strings.Contains(metrics, "agent.tool.calls")
	})
	if len(spans) != 3 || len(logs) != 2 {
		t.Fatalf("spans %v\nlogs %v\nstderr %s", spans, logs, stderr)
	}
	byName := map[string]map[string]any{}
	for _, s := range spans {
		byName[str(s["name"])] = s
		if s["trace_id"] != ids.trace {
			t.Errorf("span %v not in trace %s", s["name"], ids.trace)
		}
		if str(obj(s["resource"])["service.name"]) != "go-e2e" || str(obj(s["resource"])["telemetry.sdk.language"]) != "go" {
			t.Errorf("resource %v", s["resource"])
		}
	}
	chat, tool := byName["chat gpt-4o"], byName["execute_tool fetch_page"]
	if chat["parent_span_id"] != ids.agent || chat["span_id"] != ids.llm || num(chat["kind"]) != 3 {
		t.Errorf("chat span %v", chat)
	}
	if obj(chat["attributes"])["gen_ai.usage.input_tokens"] != 412.0 {
		t.Errorf("chat attributes %v", chat["attributes"])
	}
	if num(obj(tool["status"])["code"]) != 2 || len(list(tool["events"])) != 1 {
		t.Errorf("tool span %v", tool)
	}
	if logs[0]["message"] != "fetch_page timed out" || logs[0]["span_id"] != ids.tool || logs[0]["trace_id"] != ids.trace {
		t.Errorf("log %v", logs[0])
	}
	if !strings.Contains(metrics, "gen_ai.client.operation.duration") {
		t.Errorf("metrics %s", metrics)
	}
}

func TestEndToEndToTheCollector(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(strings.ReplaceAll(protocol, "/", "_"), func(t *testing.T) {
			c := startCollector(t)
			endpoint := c.endpoint()
			if protocol == "grpc" {
				endpoint = c.grpcTarget()
			}
			if err := polytel.Configure(polytel.Options{
				Backend:     "otlp",
				Endpoint:    endpoint,
				Protocol:    protocol,
				Compression: "gzip",
				ServiceName: "go-collector",
				Env:         map[string]string{},
			}); err != nil {
				t.Fatal(err)
			}
			ids := agentWorkload()
			shutdown(t)

			var spans []collectedSpan
			var logs []collectedLog
			var metrics []string
			waitFor(t, "the Collector to print 3 spans, 2 logs and 2 metrics", 20*time.Second, func() bool {
				out := c.stderr.String()
				spans, logs, metrics = parseCollectedSpans(out), parseCollectedLogs(out), parseCollectedMetricNames(out)
				return len(spans) >= 3 && len(logs) >= 2 && len(metrics) >= 2
			})
			time.Sleep(200 * time.Millisecond) // a duplicate export would show up now
			out := c.stderr.String()
			spans, logs = parseCollectedSpans(out), parseCollectedLogs(out)
			if len(spans) != 3 || len(logs) != 2 {
				t.Fatalf("want 3 spans and 2 log records exactly once: %+v\n%+v", spans, logs)
			}
			byName := map[string]collectedSpan{}
			for _, s := range spans {
				byName[s.Name] = s
				if s.TraceID != ids.trace || s.Resource["service.name"] != "Str(go-collector)" {
					t.Errorf("span %+v", s)
				}
			}
			agent, chat, tool := byName["invoke_agent planner"], byName["chat gpt-4o"], byName["execute_tool fetch_page"]
			if agent.ParentID != "" || agent.SpanID != ids.agent || agent.Attributes["gen_ai.agent.name"] != "Str(planner)" {
				t.Errorf("agent %+v", agent)
			}
			if chat.ParentID != ids.agent || chat.Kind != "Client" || chat.Attributes["gen_ai.usage.input_tokens"] != "Int(412)" {
				t.Errorf("chat %+v", chat)
			}
			if tool.StatusCode != "Error" || tool.StatusText != "timed out after 30s" || len(tool.Events) != 1 ||
				tool.Events[0].Name != "exception" || tool.Events[0].Attributes["exception.message"] != "Str(timed out after 30s)" {
				t.Errorf("tool %+v", tool)
			}
			first := logs[0]
			if first.Body != "Str(fetch_page timed out)" || first.SeverityText != "ERROR" || first.TraceID != ids.trace ||
				first.SpanID != ids.tool || first.Attributes["attempt"] != "Int(3)" {
				t.Errorf("log %+v", first)
			}
			for _, want := range []string{"agent.tool.calls", "gen_ai.client.operation.duration"} {
				found := false
				for _, m := range metrics {
					found = found || m == want
				}
				if !found {
					t.Errorf("metric %s missing from %v", want, metrics)
				}
			}
		})
	}
}
