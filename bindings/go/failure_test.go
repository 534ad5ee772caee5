package polytel_test

// Delivery under failure (issue 10): the Go binding against `polytel
// fault-receiver`, a loopback OTLP/HTTP receiver scripted per request (see
// host/src/faults.rs). The core decides every retry, backoff, split and drop;
// these tests check what arrives (each span id once), when, and that the
// core's counters (Stats) say exactly what happened.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// faultReceiver is a running `polytel fault-receiver`.
type faultReceiver struct {
	URL string
}

// faultStats is what GET /stats answers.
type faultStats struct {
	Requests       int            `json:"requests"`
	Answered       map[string]int `json:"answered"`
	Spans          int            `json:"spans"`
	DuplicateSpans int            `json:"duplicate_spans"`
	DataPoints     int            `json:"data_points"`
	LogRecords     int            `json:"log_records"`
}

// startFaultReceiver starts `polytel fault-receiver` with a script (JSON) and
// stops it when the test ends.
func startFaultReceiver(t *testing.T, script string) *faultReceiver {
	t.Helper()
	cmd := exec.Command(polytelBin(t), "fault-receiver", "--script", script)
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
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- strings.TrimSpace(sc.Text())
		}
		close(first)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case url, ok := <-first:
		if !ok || !strings.HasPrefix(url, "http://") {
			t.Fatalf("polytel fault-receiver printed %q, not its URL; stderr: %s", url, stderr)
		}
		return &faultReceiver{URL: url}
	case <-time.After(20 * time.Second):
		t.Fatalf("polytel fault-receiver did not print its URL in 20 s; stderr: %s", stderr)
	}
	return nil
}

// controlClient talks to the receiver's /stats and /script (its own
// connections, never the exporter's).
var controlClient = &http.Client{Timeout: 5 * time.Second}

func (f *faultReceiver) stats(t *testing.T) faultStats {
	t.Helper()
	resp, err := controlClient.Get(f.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s faultStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *faultReceiver) setScript(t *testing.T, script string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, f.URL+"/script", strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := controlClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /script: %s %s", resp.Status, body)
	}
}

// signalStats are one signal's counters in Stats.
type signalStats struct {
	Received uint64            `json:"received"`
	Exported uint64            `json:"exported"`
	Dropped  map[string]uint64 `json:"dropped"`
	Retried  uint64            `json:"retried"`
	Queued   uint64            `json:"queued"`
	Pending  uint64            `json:"pending"`
}

func (s signalStats) droppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// coreStats are Stats as a struct: the core's counters per signal and the
// library's buffer under "host".
type coreStats struct {
	Spans   signalStats `json:"spans"`
	Metrics signalStats `json:"metrics"`
	Logs    signalStats `json:"logs"`
	Exports struct {
		Sent      uint64 `json:"sent"`
		Succeeded uint64 `json:"succeeded"`
		Failed    uint64 `json:"failed"`
	} `json:"exports"`
	Host struct {
		Buffered      uint64            `json:"buffered"`
		BufferDropped map[string]uint64 `json:"buffer_dropped"`
		LostToTraps   uint64            `json:"lost_to_traps"`
	} `json:"host"`
}

func readStats(t *testing.T) coreStats {
	t.Helper()
	m, err := polytel.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var s coreStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("stats %s: %v", b, err)
	}
	return s
}

// configureFaults points polytel at endpoint (OTLP/HTTP protobuf) with short
// batching delays and an empty environment, and shuts it down when the test
// ends. Metrics go nowhere unless o says otherwise, so the receiver's request
// counts are spans' and logs' only.
func configureFaults(t *testing.T, endpoint string, o polytel.Options) {
	t.Helper()
	o.Backend = "otlp"
	o.Endpoint = endpoint
	if o.ServiceName == "" {
		o.ServiceName = "go-failure"
	}
	if o.MetricsExporter == "" {
		o.MetricsExporter = "none"
	}
	if o.ScheduleDelay == 0 {
		o.ScheduleDelay = 100 * time.Millisecond
	}
	if o.LogScheduleDelay == 0 {
		o.LogScheduleDelay = 100 * time.Millisecond
	}
	o.Env = map[string]string{}
	if err := polytel.Configure(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = polytel.Shutdown(ctx)
	})
}

// recordSpans ends n spans of two attributes each.
func recordSpans(n int) {
	for i := range n {
		_, s := polytel.Start(context.Background(), "work", polytel.Int("i", i), polytel.String("kind", "failure-test"))
		s.End()
	}
}

// recordLogs emits n log records through slog.
func recordLogs(n int) {
	logger := slog.New(polytel.NewSlogHandler(nil))
	for i := range n {
		logger.Info("step done", "i", i)
	}
}

// shutdownWithin shuts down with a deadline and fails unless Shutdown
// returned within it (plus slack); it returns how long it took and its error.
func shutdownWithin(t *testing.T, deadline, slack time.Duration) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := polytel.Shutdown(ctx)
	took := time.Since(start)
	if took > deadline+slack {
		t.Errorf("Shutdown with a %v deadline took %v", deadline, took)
	}
	return took, err
}

// droppedCount reads the count of undelivered items from Shutdown's error.
var droppedCount = regexp.MustCompile(`: (\d+) items were dropped`)

func undelivered(t *testing.T, err error) uint64 {
	t.Helper()
	if err == nil {
		t.Fatal("Shutdown returned nil: it must report what it could not deliver")
	}
	m := droppedCount.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("Shutdown's error does not say how many items were dropped: %v", err)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

func TestFailureTransientOutageLosesNothingAndSendsNothingTwice(t *testing.T) {
	// About 3 s of 503 with Retry-After: 1 (spans and logs each retry once a
	// second), then healthy.
	f := startFaultReceiver(t, `{"steps": [{"status": 503, "retry_after": "1", "times": 6}]}`)
	configureFaults(t, f.URL, polytel.Options{})
	const n = 300
	start := time.Now()
	recordSpans(n)
	recordLogs(n)

	waitFor(t, "every span and log record to arrive after the outage", 9*time.Second, func() bool {
		s := f.stats(t)
		return s.Spans >= n && s.LogRecords >= n
	})
	took := time.Since(start)
	st := readStats(t)
	got := f.stats(t)
	if got.Answered["503"] != 6 {
		t.Errorf("the outage was not what the script says (answered %v)", got.Answered)
	}
	if took < 2*time.Second {
		t.Errorf("delivered after %v: the 503s' Retry-After: 1 was not waited for", took)
	}
	for name, s := range map[string]signalStats{"spans": st.Spans, "logs": st.Logs} {
		if s.Received != n || s.Exported != n || len(s.Dropped) != 0 || s.Queued != 0 || s.Pending != 0 {
			t.Errorf("%s: want %d received and exported, nothing dropped, queued or pending: %+v", name, n, s)
		}
		if s.Retried < n {
			t.Errorf("%s: every item was refused at least once, but retried is %d", name, s.Retried)
		}
	}
	if st.Exports.Failed < 6 {
		t.Errorf("exports %+v: six attempts failed", st.Exports)
	}

	_, err := shutdownWithin(t, 5*time.Second, time.Second)
	if err != nil {
		t.Errorf("Shutdown after delivery: %v", err)
	}
	got = f.stats(t)
	if got.Spans != n || got.DuplicateSpans != 0 || got.LogRecords != n {
		t.Errorf("want %d spans once, no duplicates and %d log records; the receiver has %+v", n, n, got)
	}
}

func TestFailureShutdownDuringAShortOutageDeliversWithinItsDeadline(t *testing.T) {
	// 503 with Retry-After: 1 for about two seconds, Shutdown given 8 s: the
	// retries fit in the deadline, so nothing may be dropped.
	f := startFaultReceiver(t, `{"steps": [{"status": 503, "retry_after": "1", "times": 2}]}`)
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none"})
	const n = 200
	recordSpans(n)
	took, err := shutdownWithin(t, 8*time.Second, time.Second)
	got := f.stats(t)
	if err != nil || got.Spans != n || got.DuplicateSpans != 0 {
		t.Errorf("Shutdown (8 s deadline) during 2 s of 503s returned %v after %v; the receiver has %+v, want %d spans once",
			err, took, got, n)
	}
}

func TestFailureRetryAfterIsHonoured(t *testing.T) {
	for _, c := range []struct{ name, step string }{
		{"seconds", `{"status": 429, "retry_after": "2"}`},
		// An HTTP-date has whole seconds, so 3 s ahead is 2 to 3 s away.
		{"http_date", `{"status": 429, "retry_after_date": 3}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFaultReceiver(t, `{"steps": [`+c.step+`]}`)
			configureFaults(t, f.URL, polytel.Options{LogsExporter: "none"})
			const n = 20
			recordSpans(n)
			var refused, accepted time.Time
			waitFor(t, "the spans to arrive after the 429", 8*time.Second, func() bool {
				s := f.stats(t)
				if s.Requests >= 1 && refused.IsZero() {
					refused = time.Now()
				}
				return s.Spans >= n
			})
			accepted = time.Now()
			if wait := accepted.Sub(refused); wait < 1900*time.Millisecond || wait > 4*time.Second {
				t.Errorf("the retry came %v after the 429 (Retry-After %s)", wait, c.step)
			}
			st := readStats(t)
			if st.Spans.Exported != n || st.Spans.Retried != n || len(st.Spans.Dropped) != 0 || st.Spans.Pending != 0 {
				t.Errorf("spans %+v: want %d exported and retried once, nothing dropped", st.Spans, n)
			}
			_, err := shutdownWithin(t, 5*time.Second, time.Second)
			got := f.stats(t)
			if err != nil || got.Requests != 2 || got.Answered["429"] != 1 || got.Spans != n || got.DuplicateSpans != 0 {
				t.Errorf("shutdown %v; want one 429, then one request with %d spans: %+v", err, n, got)
			}
		})
	}
}

func TestFailureShutdownKeepsToRetryAfter(t *testing.T) {
	// Shutdown flushes, and a flush must not send before the receiver's
	// Retry-After either.
	f := startFaultReceiver(t, `{"steps": [{"status": 429, "retry_after": "2"}]}`)
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none"})
	const n = 20
	recordSpans(n)
	waitFor(t, "the 429", 5*time.Second, func() bool { return f.stats(t).Requests >= 1 })
	refused := time.Now()
	_, err := shutdownWithin(t, 6*time.Second, time.Second)
	var accepted time.Time
	waitFor(t, "the spans to arrive", 5*time.Second, func() bool {
		accepted = time.Now()
		return f.stats(t).Spans >= n
	})
	got := f.stats(t)
	if wait := accepted.Sub(refused); wait < 1900*time.Millisecond {
		t.Errorf("Shutdown sent again %v after a 429 with Retry-After: 2 (%+v)", wait, got)
	}
	if err != nil || got.Spans != n || got.DuplicateSpans != 0 {
		t.Errorf("Shutdown (6 s) returned %v; the receiver has %+v, want %d spans once", err, got, n)
	}
}

func TestFailureBadRequestIsNotRetried(t *testing.T) {
	f := startFaultReceiver(t, `{"then": {"status": 400}}`)
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none"})
	const n = 50
	recordSpans(n)
	waitFor(t, "the spans to be rejected", 5*time.Second, func() bool {
		return readStats(t).Spans.Dropped["rejected"] == n
	})
	time.Sleep(1500 * time.Millisecond) // a retry (backoff 0.5 to 1 s) would come now
	st := readStats(t)
	got := f.stats(t)
	if got.Requests != 1 || got.Answered["400"] != 1 || got.Spans != 0 {
		t.Errorf("a 400 must not be retried: the receiver saw %+v", got)
	}
	if st.Spans.Exported != 0 || st.Spans.Retried != 0 || st.Spans.Pending != 0 ||
		len(st.Spans.Dropped) != 1 || st.Spans.Dropped["rejected"] != n {
		t.Errorf("spans %+v: want all %d dropped as rejected, none retried", st.Spans, n)
	}
	if st.Exports.Failed != 1 {
		t.Errorf("exports %+v: one failed", st.Exports)
	}
}

func TestFailurePartialSuccessIsCountedAndNotRetried(t *testing.T) {
	f := startFaultReceiver(t, `{"steps": [{"partial_success": 3, "message": "3 spans too old"}]}`)
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none"})
	const n = 40
	recordSpans(n)
	waitFor(t, "the partial success to be counted", 5*time.Second, func() bool {
		return readStats(t).Spans.Dropped["partial_success"] > 0
	})
	time.Sleep(1500 * time.Millisecond) // a retry would come now
	st := readStats(t)
	got := f.stats(t)
	if got.Requests != 1 || got.Answered["partial_success"] != 1 || got.Spans != n || got.DuplicateSpans != 0 {
		t.Errorf("a partial success must not be retried: the receiver saw %+v", got)
	}
	if st.Spans.Exported != n-3 || st.Spans.Retried != 0 || st.Spans.Pending != 0 ||
		len(st.Spans.Dropped) != 1 || st.Spans.Dropped["partial_success"] != 3 {
		t.Errorf("spans %+v: want %d exported and 3 dropped as partial_success", st.Spans, n-3)
	}
	if st.Exports.Succeeded != 1 || st.Exports.Failed != 0 {
		t.Errorf("exports %+v: one succeeded", st.Exports)
	}
}

func TestFailureTooLargeSplitsTheBatch(t *testing.T) {
	f := startFaultReceiver(t, `{"steps": [{"status": 413}]}`)
	// One batch of all the spans, so the 413 has something to split.
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none", ScheduleDelay: 300 * time.Millisecond})
	const n = 200
	recordSpans(n)
	waitFor(t, "the halves to arrive", 5*time.Second, func() bool { return f.stats(t).Spans >= n })
	st := readStats(t)
	_, err := shutdownWithin(t, 5*time.Second, time.Second)
	got := f.stats(t)
	if err != nil || got.Answered["413"] != 1 || got.Answered["ok"] < 2 || got.Spans != n || got.DuplicateSpans != 0 {
		t.Errorf("shutdown %v; want one 413, then the %d spans once in at least 2 requests: %+v", err, n, got)
	}
	if st.Spans.Exported != n || len(st.Spans.Dropped) != 0 || st.Spans.Pending != 0 {
		t.Errorf("spans %+v: want all %d exported, nothing dropped", st.Spans, n)
	}
}

func TestFailureShutdownWithAnUnreachableReceiver(t *testing.T) {
	t.Run("closed_port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close()
		configureFaults(t, url, polytel.Options{})
		const n = 100
		recordSpans(n)
		recordLogs(n)
		waitFor(t, "the first attempts to fail", 5*time.Second, func() bool {
			st := readStats(t)
			return st.Spans.Pending == n && st.Logs.Pending == n && st.Exports.Failed >= 2
		})
		before := readStats(t)
		_, err = shutdownWithin(t, 2*time.Second, 500*time.Millisecond)
		if got := undelivered(t, err); got != 2*n {
			t.Errorf("Shutdown says %d items were dropped, want %d (stats before: %+v)", got, 2*n, before)
		}
		if before.Spans.Exported != 0 || before.Spans.Retried < n || len(before.Spans.Dropped) != 0 {
			t.Errorf("spans before shutdown %+v: want all %d pending and retried", before.Spans, n)
		}
	})

	t.Run("hang", func(t *testing.T) {
		for _, c := range []struct {
			name          string
			exportTimeout time.Duration
		}{
			// Each attempt times out well within the deadline, and is
			// retried until it passes.
			{"short_export_timeout", 300 * time.Millisecond},
			// The request in flight outlives the deadline (the default export
			// timeout is 10 s): Shutdown still returns at the deadline.
			{"default_export_timeout", 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				f := startFaultReceiver(t, `{"then": {"hang": true}}`)
				configureFaults(t, f.URL, polytel.Options{Timeout: c.exportTimeout})
				const n = 100
				recordSpans(n)
				recordLogs(n)
				waitFor(t, "the exports to be sent", 5*time.Second, func() bool {
					st := readStats(t)
					return st.Spans.Pending == n && st.Logs.Pending == n && f.stats(t).Requests >= 1
				})
				took, err := shutdownWithin(t, 2*time.Second, 500*time.Millisecond)
				if got := undelivered(t, err); got != 2*n {
					t.Errorf("Shutdown after %v says %d items were dropped, want %d", took, got, 2*n)
				}
				if got := f.stats(t); got.Spans != 0 || got.LogRecords != 0 {
					t.Errorf("a hanging receiver accepted nothing: %+v", got)
				}
			})
		}
	})
}

func TestFailureDeadReceiverKeepsMemoryBounded(t *testing.T) {
	const maxQueue, n = 512, 20000
	f := startFaultReceiver(t, `{"then": {"hang": true}}`)
	configureFaults(t, f.URL, polytel.Options{LogsExporter: "none", MaxQueueSize: maxQueue, MaxExportBatchSize: 256})
	// What the core holds, by its own counters: received and not yet exported
	// or dropped. Stats must say the same as queued + pending, and it must
	// stay within max_queue_size (which bounds the queue and the pending
	// exports together); the library's buffer within the same size.
	var maxHeld, maxBuffered uint64
	var mismatch string
	check := func(at int) coreStats {
		st := readStats(t)
		held := st.Spans.Received - st.Spans.Exported - st.Spans.droppedTotal()
		maxHeld, maxBuffered = max(maxHeld, held), max(maxBuffered, st.Host.Buffered)
		if reported := st.Spans.Queued + st.Spans.Pending; reported != held && mismatch == "" {
			mismatch = fmt.Sprintf("after %d spans the core holds %d (received %d - exported %d - dropped %v) but Stats says queued %d + pending %d",
				at, held, st.Spans.Received, st.Spans.Exported, st.Spans.Dropped, st.Spans.Queued, st.Spans.Pending)
		}
		return st
	}
	for done := 0; done < n; done += 1000 {
		recordSpans(1000)
		check(done + 1000)
	}
	st := check(n)
	if mismatch != "" {
		t.Error(mismatch)
	}
	if maxHeld > maxQueue {
		t.Errorf("the core held up to %d spans, over max_queue_size %d", maxHeld, maxQueue)
	}
	if maxBuffered > maxQueue {
		t.Errorf("the library buffered up to %d spans, over %d", maxBuffered, maxQueue)
	}
	got := f.stats(t)
	// Every span is accounted for, exactly, by what Stats says.
	hostDropped := st.Host.BufferDropped["spans"]
	sum := uint64(got.Spans) + st.Spans.droppedTotal() + hostDropped + st.Spans.Queued + st.Spans.Pending + st.Host.Buffered
	if sum != n {
		t.Errorf("recorded %d != accepted %d + dropped in the core %v + dropped from the library's buffer %d + queued %d + pending %d + buffered %d",
			n, got.Spans, st.Spans.Dropped, hostDropped, st.Spans.Queued, st.Spans.Pending, st.Host.Buffered)
	}
	if st.Spans.Received+hostDropped != n {
		t.Errorf("received by the core %d + dropped before it %d != %d recorded", st.Spans.Received, hostDropped, n)
	}
	// A hanging receiver rejects nothing: what was dropped was dropped for room.
	for reason := range st.Spans.Dropped {
		if reason != "queue_full" {
			t.Errorf("spans dropped for %q: %v", reason, st.Spans.Dropped)
		}
	}
	if room := st.Spans.Dropped["queue_full"] + hostDropped; room < n-2*maxQueue {
		t.Errorf("only %d of %d spans were dropped for room with a queue of %d", room, n, maxQueue)
	}
	if st.Spans.Exported != 0 || got.Spans != 0 {
		t.Errorf("nothing can be exported to a hanging receiver: %+v, receiver %+v", st.Spans, got)
	}
	_, err := shutdownWithin(t, time.Second, 500*time.Millisecond)
	if err == nil {
		t.Error("Shutdown with a hanging receiver delivered nothing, but returned nil")
	}
}

// SelfMetrics exports the core's own counters as polytel.* metrics.
func TestSelfMetricsExportTheCoresCounters(t *testing.T) {
	r := configure(t, polytel.Options{ServiceName: "go-self-metrics", SelfMetrics: true})
	_, span := polytel.Start(context.Background(), "counted")
	span.End()
	for i := 0; i < 2; i++ {
		// The second collection carries the first export's outcome.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := polytel.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	m := r.metrics()
	// Nothing was dropped, so polytel.dropped has no point to export.
	for _, name := range []string{"polytel.exported", "polytel.retried", "polytel.queued", "polytel.pending"} {
		if m[name] == nil {
			t.Errorf("no %s among %d metrics", name, len(m))
		}
	}
	exported := false
	for _, p := range list(obj(m["polytel.exported"]["sum"])["dataPoints"]) {
		a := attrs(obj(p)["attributes"])
		if a["signal"] == "spans" && obj(p)["asDouble"] != nil && obj(p)["asDouble"].(float64) >= 1 {
			exported = true
		}
	}
	if !exported {
		t.Errorf("polytel.exported has no spans point of at least 1: %v", m["polytel.exported"])
	}
}
