"""Side by side with the official Azure Monitor exporter (issue 5).

The same small scenario (tests/azure_official.py: a server span with HTTP
attributes, an HTTP client child span, an internal span with an exception
event, a warning logged inside the server span, a counter) is exported once by
``azure-monitor-opentelemetry-exporter`` on ``opentelemetry-sdk`` (in a
subprocess, so the official SDK's global state stays out of this process) and
once by polytel, both to the same loopback fake ingestion endpoint. Envelopes
are matched by base type and name and compared field by field once ids, times
and durations are normalized. Every difference must be listed, with its
reason, in fixtures/azure_differences.json; an entry that no longer differs
fails the test too, so the list stays honest.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

import polytel

from . import azure_official as scenario

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "azure_differences.json"
IKEY = "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
DURATION = re.compile(r"^\d+\.\d{2}:\d{2}:\d{2}\.\d{3}(\d{3})?$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
MISSING = "<missing>"


class FakeIngestion:
    """A loopback Application Insights ingestion endpoint: keeps the envelopes
    of every POST /v2.1/track (gzip or not) and accepts them all."""

    def __init__(self) -> None:
        self.envelopes: List[Dict[str, Any]] = []
        self.paths: List[str] = []
        self.lock = threading.Lock()
        ingestion = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding", "").lower() == "gzip" or raw[:2] == b"\x1f\x8b":
                    raw = gzip.decompress(raw)
                items: List[Dict[str, Any]] = json.loads(raw) if self.path == "/v2.1/track" else []
                with ingestion.lock:
                    ingestion.paths.append(self.path)
                    ingestion.envelopes.extend(items)
                n = len(items)
                reply = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.connection_string = (
            f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{self.server.server_address[1]}/"
        )
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingestion() -> Iterator[FakeIngestion]:
    f = FakeIngestion()
    yield f
    f.close()


def run_official(ingestion: FakeIngestion) -> List[Dict[str, Any]]:
    # The official side reads only the scenario: no OTEL_* or Application Insights settings from outside.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_", "APPINSIGHTS_"))}
    env["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    env["APPLICATIONINSIGHTS_SDKSTATS_DISABLED"] = "true"
    r = subprocess.run(
        [sys.executable, str(HERE / "azure_official.py"), ingestion.connection_string],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    with ingestion.lock:
        assert ingestion.paths and set(ingestion.paths) == {"/v2.1/track"}, ingestion.paths
        return list(ingestion.envelopes)


def run_polytel(ingestion: FakeIngestion) -> List[Dict[str, Any]]:
    resource = ",".join(f"{k}={v}" for k, v in scenario.RESOURCE.items())
    polytel.configure(
        env={"OTEL_RESOURCE_ATTRIBUTES": resource},
        backend="azure-monitor",
        azure_monitor_connection_string=ingestion.connection_string,
        azure_monitor_live_metrics="false",
    )
    logger = logging.getLogger("side-by-side")
    handler = polytel.LoggingHandler()
    logger.addHandler(handler)
    old_propagate, old_level = logger.propagate, logger.level
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        counter = polytel.counter(scenario.COUNTER_NAME)
        with polytel.span(scenario.SERVER_NAME, scenario.SERVER_ATTRS, kind="server", parent=None):
            with polytel.span(scenario.CLIENT_NAME, scenario.CLIENT_ATTRS, kind="client"):
                pass
            with polytel.span(scenario.INTERNAL_NAME, scenario.INTERNAL_ATTRS) as internal:
                internal.add_event("exception", scenario.EXCEPTION_ATTRS)
            scenario.emit_warning(logger)
        counter.add(scenario.COUNTER_VALUE, scenario.COUNTER_ATTRS)
        report = polytel.shutdown(timeout=10.0)
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = old_propagate, old_level
    assert report.flushed and report.abandoned == 0, report
    with ingestion.lock:
        assert ingestion.paths and set(ingestion.paths) == {"/v2.1/track"}, ingestion.paths
        return list(ingestion.envelopes)


def envelope_key(e: Dict[str, Any]) -> str:
    """``{baseType}:{name}``, the name being the telemetry's own (span name,
    metric name, message text, exception type)."""
    data = e.get("data", {})
    base_type = data.get("baseType", "?")
    bd = data.get("baseData", {})
    if base_type == "MetricData":
        name = bd["metrics"][0]["name"]
    elif base_type == "MessageData":
        name = bd["message"]
    elif base_type == "ExceptionData":
        name = bd["exceptions"][0]["typeName"]
    else:
        name = bd.get("name", "?")
    return f"{base_type}:{name}"


def normalize(envelopes: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Envelopes by key, with run-specific values replaced by placeholders
    (after checking their form): span ids by the span's name, the trace id,
    times, durations, and version numbers inside ai.internal.sdkVersion."""
    span_names: Dict[str, str] = {}
    trace_ids: Set[str] = set()
    for e in envelopes:
        bd = e["data"]["baseData"]
        if e["data"]["baseType"] in ("RequestData", "RemoteDependencyData"):
            assert re.fullmatch(r"[0-9a-f]{16}", bd["id"]), bd["id"]
            span_names[bd["id"]] = f"<span id of {bd['name']}>"
        if "ai.operation.id" in e.get("tags", {}):
            trace_ids.add(e["tags"]["ai.operation.id"])
    assert len(trace_ids) == 1, f"one trace expected, got {trace_ids}"
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in trace_ids), trace_ids

    out: Dict[str, Dict[str, Any]] = {}
    for original in envelopes:
        e = json.loads(json.dumps(original))
        key = envelope_key(e)
        assert key not in out, f"two envelopes {key}"
        assert TIME.match(e.get("time", "")), e.get("time")
        e["time"] = "<time>"
        tags = e.get("tags", {})
        if "ai.operation.id" in tags:
            tags["ai.operation.id"] = "<trace id>"
        if "ai.operation.parentId" in tags:
            tags["ai.operation.parentId"] = span_names.get(tags["ai.operation.parentId"], "<unknown span id>")
        if "ai.internal.sdkVersion" in tags:
            tags["ai.internal.sdkVersion"] = re.sub(r"\d+(\.\d+)*([a-z]+\d+)?", "<v>", tags["ai.internal.sdkVersion"])
        bd = e["data"]["baseData"]
        if "id" in bd:
            bd["id"] = span_names.get(bd["id"], "<unknown span id>")
        if "duration" in bd:
            assert DURATION.match(bd["duration"]), bd["duration"]
            bd["duration"] = "<duration>"
        out[key] = e
    return out


def flatten(e: Dict[str, Any]) -> Dict[str, Any]:
    """An envelope's leaves by path: ``ver``, ``tags/ai.cloud.role``,
    ``baseData/properties/app.tier``, ``baseData/exceptions/0/message``, …
    (``data/`` left out; ``baseType`` is part of the key)."""
    out: Dict[str, Any] = {}

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict) and v:
            for k, x in v.items():
                walk(f"{prefix}/{k}" if prefix else k, x)
        elif isinstance(v, list) and v:
            for i, x in enumerate(v):
                walk(f"{prefix}/{i}", x)
        else:
            out[prefix] = v

    walk("", {k: v for k, v in e.items() if k != "data"})
    walk("baseData", e["data"]["baseData"])
    return out


def same(a: Any, b: Any) -> bool:
    """Equal JSON values: 3 and 3.0 are the same number; true and 1 are not the same value."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return type(a) is type(b) and bool(a == b)
    return a == b


def differences(
    official: Dict[str, Dict[str, Any]], ours: Dict[str, Dict[str, Any]]
) -> Dict[Tuple[str, str], Tuple[Any, Any]]:
    """(envelope, field) -> (official value, polytel value); field ``*`` when
    the whole envelope is on one side only."""
    diffs: Dict[Tuple[str, str], Tuple[Any, Any]] = {}
    for key in sorted(set(official) | set(ours)):
        if key not in ours:
            diffs[(key, "*")] = ("present", MISSING)
            continue
        if key not in official:
            diffs[(key, "*")] = (MISSING, "present")
            continue
        a, b = flatten(official[key]), flatten(ours[key])
        for field in sorted(set(a) | set(b)):
            va, vb = a.get(field, MISSING), b.get(field, MISSING)
            if not same(va, vb):
                diffs[(key, field)] = (va, vb)
    return diffs


def test_envelopes_match_the_official_exporter(ingestion: FakeIngestion) -> None:
    official = normalize(run_official(ingestion))
    with ingestion.lock:
        ingestion.envelopes.clear()
        ingestion.paths.clear()
    ours = normalize(run_polytel(ingestion))

    # The scenario reached both sides in full.
    for key in (
        f"RequestData:{scenario.SERVER_NAME}",
        "RemoteDependencyData:GET /stock",
        f"RemoteDependencyData:{scenario.INTERNAL_NAME}",
        "ExceptionData:ValueError",
        f"MessageData:{scenario.LOG_MESSAGE}",
        f"MetricData:{scenario.COUNTER_NAME}",
    ):
        assert key in official, (key, sorted(official))
        assert key in ours, (key, sorted(ours))
    for e in [*official.values(), *ours.values()]:
        assert e["iKey"] == IKEY

    entries: List[Dict[str, str]] = json.loads(FIXTURE.read_text())["differences"]
    for entry in entries:
        assert set(entry) == {"envelope", "field", "reason"} and entry["reason"].strip(), entry

    def listed(key: str, field: str) -> bool:
        return any(x["envelope"] in ("*", key) and x["field"] == field for x in entries)

    found = differences(official, ours)
    unlisted = [
        f"{key} {field}: official {va!r}, polytel {vb!r}"
        for (key, field), (va, vb) in found.items()
        if not listed(key, field)
    ]
    stale = [
        f"{x['envelope']} {x['field']}"
        for x in entries
        if not any(x["envelope"] in ("*", key) and x["field"] == field for key, field in found)
    ]
    assert not unlisted, "differences not in fixtures/azure_differences.json:\n" + "\n".join(unlisted)
    assert not stale, "fixtures/azure_differences.json lists differences that are gone:\n" + "\n".join(stale)
