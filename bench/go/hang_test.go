package bench

// The app's calls never wait on the network (issue 10): per-call latency of
// a span (start and end, two attributes), a histogram record and a log emit
// (slog, two attributes), each timed call by call, with the receiver healthy
// and then hanging (`polytel fault-receiver`, script {"then":{"hang":true}}),
// in the same run. Each sub-benchmark reports its median and p99; the parent
// prints a table with the ratios hanging / healthy. See README.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// polytelCommand finds the `polytel` command: $POLYTEL_BIN, else
// release/polytel under $CARGO_TARGET_DIR, the repository's target/ or
// ~/.cache/polytel/target.
func polytelCommand(b *testing.B) string {
	if p := os.Getenv("POLYTEL_BIN"); p != "" {
		return p
	}
	var dirs []string
	if d := os.Getenv("CARGO_TARGET_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join("..", "..", "target"))
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "polytel", "target"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "release", "polytel")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	b.Fatalf("the polytel command is not built (looked in %v); run `cargo build --release --locked -p polytel`", dirs)
	return ""
}

// startFaultReceiver runs `polytel fault-receiver` until the benchmark ends
// and returns its base URL.
func startFaultReceiver(b *testing.B) string {
	cmd := exec.Command(polytelCommand(b), "fault-receiver")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("polytel fault-receiver printed no URL: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return strings.TrimSpace(line)
}

func setScript(b *testing.B, url, script string) {
	req, err := http.NewRequest(http.MethodPut, url+"/script", strings.NewReader(script))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("PUT /script: %s", resp.Status)
	}
}

// receiverRequests is the receiver's request count (GET /stats).
func receiverRequests(b *testing.B, url string) int {
	resp, err := http.Get(url + "/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Requests int `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		b.Fatal(err)
	}
	return s.Requests
}

// latency is one sub-benchmark's per-call distribution.
type latency struct{ p50, p99 time.Duration }

func quantiles(samples []time.Duration) latency {
	slices.Sort(samples)
	at := func(q float64) time.Duration { return samples[int(q*float64(len(samples)-1))] }
	return latency{p50: at(0.5), p99: at(0.99)}
}

func BenchmarkHangingReceiver(b *testing.B) {
	url := startFaultReceiver(b)
	ctx := context.Background()
	type op struct {
		name string
		call func()
	}
	results := map[string]map[string]latency{}
	var ops []op
	for _, receiver := range []string{"healthy", "hanging"} {
		script := `{"then": {"ok": true}}`
		if receiver == "hanging" {
			script = `{"then": {"hang": true}}`
		}
		setScript(b, url, script)
		if err := polytel.Configure(polytel.Options{
			Backend: "otlp", Endpoint: url, ServiceName: "bench-hang", Env: map[string]string{},
			// Exports every 200 ms, so each signal's exports meet the receiver
			// (and hang) during the run.
			ScheduleDelay: 200 * time.Millisecond, LogScheduleDelay: 200 * time.Millisecond,
			MetricExportInterval: 200 * time.Millisecond,
		}); err != nil {
			b.Fatal(err)
		}
		histogram := polytel.Histogram("bench.tool.duration", polytel.WithUnit("s"))
		logger := slog.New(polytel.NewSlogHandler(nil))
		ops = []op{
			{"span", func() {
				_, s := polytel.Start(ctx, "execute_tool fetch_page",
					polytel.String("gen_ai.tool.name", "fetch_page"), polytel.Int("attempt", 1))
				s.End()
			}},
			{"metric", func() {
				histogram.Record(ctx, 0.012, polytel.String("gen_ai.tool.name", "fetch_page"), polytel.Bool("ok", true))
			}},
			{"log", func() {
				logger.InfoContext(ctx, "tool finished", "gen_ai.tool.name", "fetch_page", "attempt", 1)
			}},
		}
		// Warm up; with the hanging receiver, until an export is stuck in it.
		for _, o := range ops {
			for range 1000 {
				o.call()
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for receiverRequests(b, url) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		results[receiver] = map[string]latency{}
		for _, o := range ops {
			b.Run("receiver="+receiver+"/op="+o.name, func(b *testing.B) {
				samples := make([]time.Duration, 0, 1<<20)
				for b.Loop() {
					start := time.Now()
					o.call()
					samples = append(samples, time.Since(start))
				}
				l := quantiles(samples)
				b.ReportMetric(float64(l.p50.Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(l.p99.Nanoseconds()), "p99-ns")
				results[receiver][o.name] = l
			})
		}
		// A hanging receiver holds the last export: Shutdown gives up at its
		// deadline, which is what it is for.
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = polytel.Shutdown(sctx)
		cancel()
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-7s %12s %12s %12s %12s %9s %9s\n", "call", "healthy p50", "hanging p50", "healthy p99", "hanging p99", "p50 ratio", "p99 ratio")
	for _, o := range ops {
		h, g := results["healthy"][o.name], results["hanging"][o.name]
		if h.p50 == 0 || h.p99 == 0 {
			continue
		}
		fmt.Fprintf(&table, "%-7s %12v %12v %12v %12v %9.2f %9.2f\n", o.name, h.p50, g.p50, h.p99, g.p99,
			float64(g.p50)/float64(h.p50), float64(g.p99)/float64(h.p99))
	}
	// b.Log of a benchmark with sub-benchmarks is not shown; the table goes to stdout.
	fmt.Print(table.String())
}
