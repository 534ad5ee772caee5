"""polytel against the official OpenTelemetry SDK for Python (opentelemetry-sdk
with its OTLP/HTTP protobuf exporter), in the same run, on the same machine,
exporting to the same local sink. Read the ratios, not the absolute numbers.

    python bench/python/bench.py [--rounds 5] [--spans 20000] [--measurements 100000]

Each SDK runs in a process of its own per round (alternating, so machine noise
hits both alike); the sink is a third process that reads and discards each
request. Per workload it prints the median over the rounds of:

- span: start a span, set 4 attributes, end it (as a context manager), per
  span on the application's thread, and per span until everything was
  exported (``force_flush`` returned): the latter includes the export
  worker's encoding and sending, which in Python competes for the GIL.
- counter add and histogram record with two attributes, on the application's
  thread (aggregation happens at collection: polytel's core aggregates on its
  worker, the SDK aggregates on the calling thread).
- llm call: one LLM call recorded as the GenAI conventions ask, on the
  application's thread and until exported. polytel: ``llm_call`` with
  ``record_usage``; the core names the span, writes its attributes, records
  the duration and token histograms and prices the tokens on its worker. The
  SDK: what an app writes by hand for the same telemetry, a span with the
  conventions' 5 attributes and 3 histogram records (duration, input and
  output tokens), with no cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List


def sink(port_file: str) -> None:
    """Answers every POST with 200 and an empty body, reading the request fully."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", self.headers.get("Content-Type") or "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


ATTRS = {"gen_ai.tool.name": "search", "outcome": "ok"}

# The GenAI conventions' histogram boundaries (shared/reference/genai-prometheus.md §5a).
DURATION_BOUNDARIES = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BOUNDARIES = [4.0**i for i in range(14)]


def time_per_op(n: int, f: Callable[[], None]) -> float:
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) / n * 1e6


def run_polytel(endpoint: str, spans: int, measurements: int) -> Dict[str, float]:
    import polytel

    polytel.configure(
        env={}, backend="otlp", endpoint=endpoint, service_name="bench", max_queue_size=1 << 20
    )  # defaults otherwise: http/protobuf, batches of 512

    def span_loop() -> None:
        for _ in range(spans):
            with polytel.span("chat gpt-4o") as s:
                s.set_attribute("gen_ai.request.model", "gpt-4o")
                s.set_attribute("gen_ai.usage.input_tokens", 412)
                s.set_attribute("gen_ai.request.temperature", 0.2)
                s.set_attribute("gen_ai.response.id", "chatcmpl-123")

    counter = polytel.counter("agent.tool.calls")
    histogram = polytel.histogram("gen_ai.client.operation.duration", unit="s")

    def counter_loop() -> None:
        for _ in range(measurements):
            counter.add(1, ATTRS)

    def histogram_loop() -> None:
        for _ in range(measurements):
            histogram.record(0.73, ATTRS)

    def llm_loop() -> None:
        for _ in range(spans):
            with polytel.llm_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=412, output_tokens=96)

    loops = {"span": span_loop, "llm call": llm_loop}
    return measure(loops, counter_loop, histogram_loop, spans, measurements, lambda: polytel.force_flush(120))


def run_otel(endpoint: str, spans: int, measurements: int) -> Dict[str, float]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    resource = Resource.create({"service.name": "bench"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), max_queue_size=1 << 20)
    )
    tracer = provider.get_tracer("bench")
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"), export_interval_millis=3_600_000
    )
    meter = MeterProvider(resource=resource, metric_readers=[reader]).get_meter("bench")

    def span_loop() -> None:
        for _ in range(spans):
            with tracer.start_as_current_span("chat gpt-4o") as s:
                s.set_attribute("gen_ai.request.model", "gpt-4o")
                s.set_attribute("gen_ai.usage.input_tokens", 412)
                s.set_attribute("gen_ai.request.temperature", 0.2)
                s.set_attribute("gen_ai.response.id", "chatcmpl-123")

    counter = meter.create_counter("agent.tool.calls")
    histogram = meter.create_histogram("gen_ai.client.operation.duration", unit="s")

    def counter_loop() -> None:
        for _ in range(measurements):
            counter.add(1, ATTRS)

    def histogram_loop() -> None:
        for _ in range(measurements):
            histogram.record(0.73, ATTRS)

    duration = meter.create_histogram(
        "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BOUNDARIES
    )
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BOUNDARIES
    )

    def llm_loop() -> None:
        for _ in range(spans):
            start = time.perf_counter()
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as s:
                s.set_attribute("gen_ai.operation.name", "chat")
                s.set_attribute("gen_ai.provider.name", "openai")
                s.set_attribute("gen_ai.request.model", "gpt-4o")
                s.set_attribute("gen_ai.usage.input_tokens", 412)
                s.set_attribute("gen_ai.usage.output_tokens", 96)
                common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
                duration.record(time.perf_counter() - start, common)
                tokens.record(412, {**common, "gen_ai.token.type": "input"})
                tokens.record(96, {**common, "gen_ai.token.type": "output"})

    def flush() -> None:
        provider.force_flush(120_000)
        reader.force_flush(120_000)

    loops = {"span": span_loop, "llm call": llm_loop}
    return measure(loops, counter_loop, histogram_loop, spans, measurements, flush)


def measure(
    loops: Dict[str, Callable[[], None]],
    counter_loop: Callable[[], None],
    histogram_loop: Callable[[], None],
    spans: int,
    measurements: int,
    flush: Callable[[], Any],
) -> Dict[str, float]:
    results: Dict[str, float] = {}
    for name, loop in loops.items():
        loop()  # warm-up: first exports, caches
        flush()
        t = time.perf_counter()
        loop()
        results[f"{name} (app thread)"] = (time.perf_counter() - t) / spans * 1e6
        flush()
        results[f"{name} (until exported)"] = (time.perf_counter() - t) / spans * 1e6
    results["counter add"] = time_per_op(measurements, counter_loop)
    results["histogram record"] = time_per_op(measurements, histogram_loop)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--measurements", type=int, default=100_000)
    parser.add_argument("--worker", choices=["polytel", "otel"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.sink:
        sink(args.sink)
        return
    if args.worker:
        run = run_polytel if args.worker == "polytel" else run_otel
        print(json.dumps(run(args.endpoint, args.spans, args.measurements)))
        return

    port_file = f"/tmp/polytel-bench-sink-{os.getpid()}"
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", port_file])
    try:
        deadline = time.monotonic() + 10
        while not (os.path.exists(port_file) and Path(port_file).read_text()):
            assert time.monotonic() < deadline, "the sink did not start"
            time.sleep(0.01)
        endpoint = f"http://127.0.0.1:{Path(port_file).read_text()}"
        results: Dict[str, List[Dict[str, float]]] = {"polytel": [], "otel": []}
        for r in range(args.rounds):
            for sdk in ("polytel", "otel") if r % 2 == 0 else ("otel", "polytel"):
                out = subprocess.run(
                    [
                        *(sys.executable, __file__, "--worker", sdk, "--endpoint", endpoint),
                        *("--spans", str(args.spans), "--measurements", str(args.measurements)),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[sdk].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        sink_proc.kill()
        sink_proc.wait()
        if os.path.exists(port_file):
            os.unlink(port_file)

    import polytel
    from opentelemetry.sdk.version import __version__ as otel_version

    print(
        f"Python {sys.version.split()[0]}, polytel {polytel.__version__}, "
        f"opentelemetry-sdk {otel_version}; "
        f"{args.rounds} rounds, {args.spans} spans, {args.measurements} measurements; medians, µs per operation"
    )
    print(f"{'workload':<24}{'polytel':>10}{'otel sdk':>10}{'polytel / sdk':>16}")
    for key in results["polytel"][0]:
        p = statistics.median(x[key] for x in results["polytel"])
        o = statistics.median(x[key] for x in results["otel"])
        print(f"{key:<24}{p:>10.2f}{o:>10.2f}{p / o:>16.2f}")


if __name__ == "__main__":
    main()
