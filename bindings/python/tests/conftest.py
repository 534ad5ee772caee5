"""Shared fixtures: a capturing OTLP/HTTP receiver on loopback, and a clean
polytel configuration around every test."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import polytel
from polytel import _metrics

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Request:
    path: str
    headers: Dict[str, str]
    #: The body as sent, gzip removed when the request was compressed.
    body: bytes
    raw_length: int

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    def json(self) -> Any:
        return json.loads(self.body)


#: (status, extra headers, body) to answer with.
Answer = Tuple[int, Dict[str, str], bytes]


@dataclass
class Capture:
    """A loopback OTLP/HTTP receiver that keeps every request. ``answers``
    (consumed in order) say how to answer; after them, 200 with ``{}``."""

    endpoint: str = ""
    requests: List[Request] = field(default_factory=list)
    answers: List[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def on(self, path: str) -> List[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, ok: Callable[[List[Request]], bool], timeout: float = 10.0) -> List[Request]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not ok(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting; got {[r.path for r in self.requests]}")
                self.arrived.wait(left)
            return list(self.requests)

    def spans(self) -> List[Dict[str, Any]]:
        """Every span in the JSON trace requests so far, with its resource and scope."""
        out = []
        for r in self.on("/v1/traces"):
            for rs in r.json()["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        out.append(
                            {**s, "_resource": attrs(rs["resource"].get("attributes", [])), "_scope": ss["scope"]}
                        )
        return out

    def logs(self) -> List[Dict[str, Any]]:
        out = []
        for r in self.on("/v1/logs"):
            for rl in r.json()["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    for rec in sl["logRecords"]:
                        out.append({**rec, "_scope": sl.get("scope", {})})
        return out

    def metrics(self) -> Dict[str, Dict[str, Any]]:
        """The last export of each metric by name."""
        out: Dict[str, Dict[str, Any]] = {}
        for r in self.on("/v1/metrics"):
            for rm in r.json()["resourceMetrics"]:
                for sm in rm["scopeMetrics"]:
                    for m in sm["metrics"]:
                        out[m["name"]] = m
        return out


def value(v: Dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue as a Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"])
    if "arrayValue" in v:
        return [value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return attrs(v["kvlistValue"].get("values", []))
    return None


def attrs(kvs: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {kv["key"]: value(kv.get("value", {})) for kv in kvs}


def _handler(capture: Capture) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
            with capture.lock:
                answer = capture.answers.pop(0) if capture.answers else None
                capture.requests.append(Request(self.path, headers, body, len(raw)))
                capture.arrived.notify_all()
            status, extra, reply = answer or (200, {}, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(c))
    server.daemon_threads = True
    c.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield c
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean_polytel() -> Iterator[None]:
    """Every test starts and ends unconfigured."""
    polytel.shutdown(timeout=2.0)
    yield
    polytel.shutdown(timeout=2.0)
    # Observable instruments live until unregistered; tests start without any.
    with _metrics._registry_lock:
        _metrics._observables.clear()


def configure_json(capture: Capture, **options: Any) -> None:
    """Configures polytel to send OTLP/HTTP JSON to ``capture``, from an empty environment."""
    opts: Dict[str, Any] = {"backend": "otlp", "endpoint": capture.endpoint, "protocol": "http/json"}
    opts.update(options)
    env = opts.pop("env", {})
    polytel.configure(env=env, **opts)


def polytel_bin() -> Optional[Path]:
    """The polytel command of the Rust build (the shared cache), if built."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.environ.get("POLYTEL_CACHE") or os.path.expanduser("~/.cache/polytel"), "target"
    )
    p = Path(target) / "release" / "polytel"
    if p.is_file():
        return p
    found = shutil.which("polytel")
    return Path(found) if found else None
