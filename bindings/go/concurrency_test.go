package polytel_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
)

// Many goroutines record at once (run with -race too): nothing is lost,
// nothing is duplicated, every child stays in its own trace.
func TestManyGoroutinesRecordAtOnce(t *testing.T) {
	const goroutines, perGoroutine = 8, 300
	r := configure(t, polytel.Options{MaxQueueSize: 100000, LogMaxQueueSize: 100000})
	calls := polytel.Counter("work.items")
	logger := slog.New(polytel.NewSlogHandler(nil))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				ctx, parent := polytel.Start(context.Background(), "parent", polytel.Int("g", g), polytel.Int("i", i))
				_, child := polytel.Start(ctx, "child")
				child.SetAttributes(polytel.String("k", "v"))
				// Another goroutine may touch the same span.
				done := make(chan struct{})
				go func() { parent.AddEvent("tick"); close(done) }()
				child.End()
				<-done
				calls.Add(ctx, 1, polytel.Int("g", g))
				logger.InfoContext(ctx, "item", "i", i)
				parent.End()
			}
		}()
	}
	wg.Wait()
	stats, err := polytel.Stats()
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t)

	spans := r.spans()
	if want := goroutines * perGoroutine * 2; len(spans) != want {
		t.Fatalf("want %d spans, got %d (stats before shutdown: %v)", want, len(spans), stats)
	}
	parents := map[string]otlpSpan{}
	seen := map[string]bool{}
	for _, s := range spans {
		if seen[s.SpanID] {
			t.Fatalf("span id %s twice", s.SpanID)
		}
		seen[s.SpanID] = true
		if s.Name == "parent" {
			parents[s.SpanID] = s
			if len(s.Events) != 1 {
				t.Fatalf("parent events: %v", s.Events)
			}
		}
	}
	for _, s := range spans {
		if s.Name != "child" {
			continue
		}
		p, ok := parents[s.ParentSpanID]
		if !ok || p.TraceID != s.TraceID {
			t.Fatalf("child %+v has no parent in its trace", s)
		}
	}
	if n := len(r.logs()); n != goroutines*perGoroutine {
		t.Errorf("want %d log records, got %d", goroutines*perGoroutine, n)
	}
	var total float64
	for _, p := range list(obj(r.metrics()["work.items"]["sum"])["dataPoints"]) {
		total += obj(p)["asDouble"].(float64)
	}
	if total != goroutines*perGoroutine {
		t.Errorf("counter total %v", total)
	}
}

// Shutdown while other goroutines still record: no panic, no race; what
// arrives after Shutdown is dropped.
func TestShutdownWhileRecording(t *testing.T) {
	configure(t, polytel.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, s := polytel.Start(context.Background(), "busy")
				polytel.Counter("busy").Add(ctx, 1)
				s.End()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := polytel.Shutdown(ctx); err != nil {
		t.Log("shutdown while recording:", err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
}
