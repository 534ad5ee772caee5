"""End to end: an agent-style workload through the Python API to `polytel
receive` (the Rust receiver, decoding real OTLP/HTTP protobuf) and to a real
OpenTelemetry Collector."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Dict, List

import pytest

import polytel

from .collector import (
    CollectedLog,
    CollectedMetric,
    CollectedSpan,
    Collector,
    free_port,
    parse_logs,
    parse_metrics,
    parse_spans,
)
from .conftest import REPO, polytel_bin


def agent_workload() -> Dict[str, str]:
    """A small agent run: spans of several kinds, an error, metrics and logs.
    Returns the ids the checks need."""
    calls = polytel.counter("agent.tool.calls", unit="{call}")
    duration = polytel.histogram("gen_ai.client.operation.duration", unit="s", boundaries=[0.1, 1, 10])
    polytel.observable_gauge("agent.memory.entries", lambda: 7)
    with polytel.span("invoke_agent planner", {"gen_ai.agent.name": "planner"}) as agent:
        with polytel.span("chat gpt-4o", {"gen_ai.request.model": "gpt-4o"}, kind="client") as llm:
            llm.set_attribute("gen_ai.usage.input_tokens", 412)
            duration.record(0.73, {"gen_ai.request.model": "gpt-4o"})
        try:
            with polytel.span("execute_tool fetch_page", {"gen_ai.tool.name": "fetch_page"}):
                calls.add(1, {"gen_ai.tool.name": "fetch_page", "outcome": "error"})
                polytel.log("error", "fetch_page timed out", attempt=3)
                raise TimeoutError("timed out after 30s")
        except TimeoutError:
            pass
        polytel.log("info", "planning done")
    return {"trace_id": agent.trace_id, "agent": agent.span_id, "llm": llm.span_id}


@pytest.fixture
def receiver() -> Iterator[tuple]:  # type: ignore[type-arg]
    binary = polytel_bin()
    assert binary is not None, (
        "the polytel command is not built; run `cargo build --release --locked --bin polytel` "
        "(scripts/test.sh does) — it is required for this test"
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "receive", "--listen", f"127.0.0.1:{port}", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "polytel receive did not start"
            time.sleep(0.02)
    yield proc, f"http://127.0.0.1:{port}"
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_agent_workload_to_polytel_receive(receiver: tuple) -> None:  # type: ignore[type-arg]
    proc, endpoint = receiver
    polytel.configure(env={}, backend="otlp", endpoint=endpoint, service_name="py-agent")  # http/protobuf
    ids = agent_workload()
    report = polytel.shutdown(10)
    assert report.flushed and report.abandoned == 0
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    lines: List[Dict[str, Any]] = [json.loads(line) for line in out.splitlines() if line.strip()]
    spans = {line["name"]: line for line in lines if "span_id" in line and "name" in line}
    assert set(spans) == {"invoke_agent planner", "chat gpt-4o", "execute_tool fetch_page"}, out
    agent = spans["invoke_agent planner"]
    assert agent["trace_id"] == ids["trace_id"] and agent["span_id"] == ids["agent"]
    assert spans["chat gpt-4o"]["parent_span_id"] == ids["agent"] and spans["chat gpt-4o"]["kind"] == 3
    assert spans["execute_tool fetch_page"]["status"]["code"] == 2
    assert agent["resource"]["service.name"] == "py-agent"
    assert agent["resource"]["telemetry.sdk.language"] == "python"
    logs = [line for line in lines if "level" in line and "message" in line]
    assert [(rec["level"], rec["message"]) for rec in logs] == [
        ("ERROR", "fetch_page timed out"),
        ("INFO", "planning done"),
    ], out
    assert logs[0]["trace_id"] == ids["trace_id"]
    metrics = [line for line in lines if "resourceMetrics" in line]
    names = {
        m["name"] for r in metrics for rm in r["resourceMetrics"] for sm in rm["scopeMetrics"] for m in sm["metrics"]
    }
    assert {"agent.tool.calls", "gen_ai.client.operation.duration", "agent.memory.entries"} <= names, out


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.stop()


def test_agent_workload_to_the_opentelemetry_collector(collector: Collector) -> None:
    polytel.configure(
        env={}, backend="otlp", endpoint=collector.endpoint, compression="gzip", service_name="py-agent-collector"
    )
    ids = agent_workload()
    report = polytel.shutdown(10)
    assert report.flushed and report.abandoned == 0

    spans: List[CollectedSpan] = collector.wait_for("3 spans", parse_spans, lambda s: len(s) >= 3)
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"invoke_agent planner", "chat gpt-4o", "execute_tool fetch_page"}
    agent, llm, tool = by_name["invoke_agent planner"], by_name["chat gpt-4o"], by_name["execute_tool fetch_page"]
    assert agent.trace_id == ids["trace_id"] and agent.span_id == ids["agent"] and agent.parent_id == ""
    assert llm.parent_id == ids["agent"] and llm.kind == "Client"
    assert llm.attributes["gen_ai.usage.input_tokens"] == "Int(412)"
    assert llm.attributes["gen_ai.request.model"] == "Str(gpt-4o)"
    assert tool.status_code == "Error" and tool.status_message == "TimeoutError: timed out after 30s"
    assert tool.events == ["exception"]
    assert agent.resource["service.name"] == "Str(py-agent-collector)"
    assert agent.resource["telemetry.sdk.language"] == "Str(python)"

    logs: List[CollectedLog] = collector.wait_for("2 log records", parse_logs, lambda x: len(x) >= 2)
    assert [(rec.body, rec.severity_text) for rec in logs] == [
        ("Str(fetch_page timed out)", "ERROR"),
        ("Str(planning done)", "INFO"),
    ]
    assert logs[0].trace_id == ids["trace_id"] and logs[0].attributes["attempt"] == "Int(3)"

    def complete(ms: List[CollectedMetric]) -> bool:
        return {"agent.tool.calls", "gen_ai.client.operation.duration", "agent.memory.entries"} <= {m.name for m in ms}

    metrics = {m.name: m for m in collector.wait_for("the agent's metrics", parse_metrics, complete)}
    assert metrics["agent.tool.calls"].data_type == "Sum"
    assert "Value: 1.000000" in metrics["agent.tool.calls"].points
    hist = metrics["gen_ai.client.operation.duration"]
    assert hist.data_type == "Histogram" and "Count: 1" in hist.points
    assert f"     -> Span ID: {ids['llm']}" in hist.points, "the exemplar points at the LLM call"
    assert metrics["agent.memory.entries"].data_type == "Gauge"
    assert "Value: 7.000000" in metrics["agent.memory.entries"].points


EXAMPLE = REPO / "examples" / "python" / "agent.py"


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POLYTEL_BACKEND"))},
    )


def test_the_example_agent_prints_to_the_console() -> None:
    result = run_example("--runs", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "invoke_agent research" in out and "chat gpt-4o" in out and "execute_tool fetch_page" in out
    assert "agent finished" in out, "log records go to the console too"
    # The GenAI kit's metrics come from the core, and the summary from stats().
    assert "metric gen_ai.client.operation.duration" in out and "metric gen_ai.client.token.usage" in out
    assert '"operation": "execute_tool"' in out and '"name": "fetch_page"' in out


def test_the_example_agent_sends_to_the_collector(collector: Collector) -> None:
    before = len(parse_spans(collector.output()))
    result = run_example("--endpoint", collector.endpoint, "--runs", "2")
    assert result.returncode == 0, result.stderr
    spans = collector.wait_for("the example's spans", parse_spans, lambda s: len(s) >= before + 16)[before:]
    agents = [s for s in spans if s.name == "invoke_agent research"]
    assert len(agents) == 2
    assert {s.resource["service.name"] for s in spans} == {"Str(research-agent)"}
    for s in spans:
        if s.name != "invoke_agent research":
            assert s.parent_id in {a.span_id for a in agents}, s.name
    logs = collector.wait_for("the example's logs", parse_logs, lambda x: any("agent finished" in r.body for r in x))
    finished = [r for r in logs if "agent finished" in r.body]
    assert {r.trace_id for r in finished} == {a.trace_id for a in agents}
