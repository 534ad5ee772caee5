// Package bench compares polytel's Go binding with the official
// OpenTelemetry Go SDK (go.opentelemetry.io/otel/sdk), in the same run: the
// application goroutine's cost of a span (start, three attributes, end) and
// of a counter add and a histogram record, each with two attributes.
//
// Both export spans over OTLP/HTTP protobuf to the same local sink (an
// httptest server answering 200), with their default batching; metrics are
// aggregated by each SDK and not exported during the run. See README.md.
package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	polytel "github.com/polytel/polytel/bindings/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

var sinkURL string

func TestMain(m *testing.M) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	sinkURL = sink.URL
	code := m.Run()
	sink.Close()
	os.Exit(code)
}

func configurePolytel(b *testing.B) {
	if err := polytel.Configure(polytel.Options{
		Backend: "otlp", Endpoint: sinkURL, Protocol: "http/protobuf", ServiceName: "bench", Env: map[string]string{},
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = polytel.Shutdown(ctx)
	})
}

// reportDropped reports the fraction of spans polytel dropped (queues full:
// the loop records faster than anything could export them).
func reportDropped(b *testing.B) {
	stats, err := polytel.Stats()
	if err != nil {
		b.Fatal(err)
	}
	var dropped float64
	for _, n := range asMap(asMap(stats["spans"])["dropped"]) {
		f, _ := n.(float64)
		dropped += f
	}
	f, _ := asMap(asMap(stats["host"])["buffer_dropped"])["spans"].(float64)
	dropped += f
	b.ReportMetric(dropped/float64(b.N), "dropped/op")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func otelTracer(b *testing.B) trace.Tracer {
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sinkURL+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("bench"))),
	)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	return tp.Tracer("bench")
}

func BenchmarkSpan(b *testing.B) {
	ctx := context.Background()
	b.Run("sdk=polytel", func(b *testing.B) {
		configurePolytel(b)
		b.ReportAllocs()
		for b.Loop() {
			_, s := polytel.Start(ctx, "chat gpt-4o",
				polytel.String("gen_ai.request.model", "gpt-4o"),
				polytel.Int("gen_ai.usage.input_tokens", 412),
				polytel.Bool("gen_ai.request.stream", false))
			s.End()
		}
		reportDropped(b)
	})
	b.Run("sdk=otel", func(b *testing.B) {
		tracer := otelTracer(b)
		b.ReportAllocs()
		for b.Loop() {
			_, s := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(
				attribute.String("gen_ai.request.model", "gpt-4o"),
				attribute.Int("gen_ai.usage.input_tokens", 412),
				attribute.Bool("gen_ai.request.stream", false)))
			s.End()
		}
	})
}

// The same from every core at once (GOMAXPROCS goroutines).
func BenchmarkSpanParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("sdk=polytel", func(b *testing.B) {
		configurePolytel(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, s := polytel.Start(ctx, "chat gpt-4o",
					polytel.String("gen_ai.request.model", "gpt-4o"),
					polytel.Int("gen_ai.usage.input_tokens", 412),
					polytel.Bool("gen_ai.request.stream", false))
				s.End()
			}
		})
		reportDropped(b)
	})
	b.Run("sdk=otel", func(b *testing.B) {
		tracer := otelTracer(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, s := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(
					attribute.String("gen_ai.request.model", "gpt-4o"),
					attribute.Int("gen_ai.usage.input_tokens", 412),
					attribute.Bool("gen_ai.request.stream", false)))
				s.End()
			}
		})
	})
}

func otelMeter(b *testing.B) otelmetric.Meter {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp.Meter("bench")
}

func BenchmarkCounterAdd(b *testing.B) {
	ctx := context.Background()
	b.Run("sdk=polytel", func(b *testing.B) {
		configurePolytel(b)
		c := polytel.Counter("agent.tool.calls")
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, polytel.String("gen_ai.tool.name", "search"), polytel.Bool("ok", true))
		}
	})
	b.Run("sdk=otel", func(b *testing.B) {
		c, err := otelMeter(b).Float64Counter("agent.tool.calls")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			c.Add(ctx, 1, otelmetric.WithAttributes(attribute.String("gen_ai.tool.name", "search"), attribute.Bool("ok", true)))
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	ctx := context.Background()
	b.Run("sdk=polytel", func(b *testing.B) {
		configurePolytel(b)
		h := polytel.Histogram("gen_ai.client.operation.duration", polytel.WithUnit("s"))
		b.ReportAllocs()
		for b.Loop() {
			h.Record(ctx, 0.73, polytel.String("gen_ai.request.model", "gpt-4o"), polytel.String("gen_ai.operation.name", "chat"))
		}
	})
	b.Run("sdk=otel", func(b *testing.B) {
		h, err := otelMeter(b).Float64Histogram("gen_ai.client.operation.duration", otelmetric.WithUnit("s"))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			h.Record(ctx, 0.73, otelmetric.WithAttributes(
				attribute.String("gen_ai.request.model", "gpt-4o"), attribute.String("gen_ai.operation.name", "chat")))
		}
	})
}

// End to end: 1000 spans, then a flush that exports them all (nothing is
// dropped: the queues hold 2048); ns/op is per span, the export included.
func BenchmarkSpanEndToEnd(b *testing.B) {
	const spans = 1000
	ctx := context.Background()
	b.Run("sdk=polytel", func(b *testing.B) {
		configurePolytel(b)
		b.ReportAllocs()
		for b.Loop() {
			for range spans {
				_, s := polytel.Start(ctx, "chat gpt-4o",
					polytel.String("gen_ai.request.model", "gpt-4o"),
					polytel.Int("gen_ai.usage.input_tokens", 412),
					polytel.Bool("gen_ai.request.stream", false))
				s.End()
			}
			if err := polytel.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
		reportDropped(b)
	})
	b.Run("sdk=otel", func(b *testing.B) {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(sinkURL+"/v1/traces"))
		if err != nil {
			b.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("bench"))))
		defer tp.Shutdown(ctx)
		tracer := tp.Tracer("bench")
		b.ReportAllocs()
		for b.Loop() {
			for range spans {
				_, s := tracer.Start(ctx, "chat gpt-4o", trace.WithAttributes(
					attribute.String("gen_ai.request.model", "gpt-4o"),
					attribute.Int("gen_ai.usage.input_tokens", 412),
					attribute.Bool("gen_ai.request.stream", false)))
				s.End()
			}
			if err := tp.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
	})
}
