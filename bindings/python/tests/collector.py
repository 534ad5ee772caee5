"""A real OpenTelemetry Collector for the end-to-end tests, and a reader of
what its debug exporter (``verbosity: detailed``) prints — as the Rust tests do
in host/tests/support/collector.rs; the format is documented in
scripts/collector/README.md. A collector that cannot be built or started is a
test failure, never a skip."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypeVar

from .conftest import REPO

READY_LOG = "Everything is ready"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def install() -> Path:
    """Runs scripts/install-collector.sh (builds once, cached); its last stdout line is the binary."""
    script = REPO / "scripts" / "install-collector.sh"
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert out.returncode == 0, (
        f"{script} failed ({out.returncode}); the collector is required for this test.\n"
        f"--- stdout ---\n{out.stdout}\n--- stderr ---\n{out.stderr}"
    )
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    assert lines and Path(lines[-1]).is_file(), f"{script} printed no binary path:\n{out.stdout}\n{out.stderr}"
    return Path(lines[-1])


@dataclass
class CollectedSpan:
    name: str = ""
    trace_id: str = ""
    parent_id: str = ""
    span_id: str = ""
    kind: str = ""
    status_code: str = ""
    status_message: str = ""
    resource: Dict[str, str] = field(default_factory=dict)
    scope: str = ""
    attributes: Dict[str, str] = field(default_factory=dict)
    events: List[str] = field(default_factory=list)
    links: List[str] = field(default_factory=list)


@dataclass
class CollectedMetric:
    name: str = ""
    data_type: str = ""
    #: The printed lines of its data points.
    points: List[str] = field(default_factory=list)


@dataclass
class CollectedLog:
    body: str = ""
    severity_text: str = ""
    severity_number: str = ""
    trace_id: str = ""
    span_id: str = ""
    attributes: Dict[str, str] = field(default_factory=dict)


def _dumps(text: str, header: str) -> List[List[str]]:
    """The lines of every complete dump starting with ``header``."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].rsplit("\t", 1)[-1].startswith(header):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("\t{")), None)
            if end is None:
                break
            out.append(lines[i + 1 : end])
            i = end + 1
            continue
        i += 1
    return out


_FIELD = re.compile(r"^    (Trace ID|Parent ID|ID|Name|Kind|Status code|Status message)\s*: ?(.*)$")
_TOP = re.compile(r"^     -> (.+?): (\w+\(.*)$")


def parse_spans(text: str) -> List[CollectedSpan]:
    spans: List[CollectedSpan] = []
    for dump in _dumps(text, "ResourceSpans #"):
        resource: Dict[str, str] = {}
        scope, section = "", "resource"
        for line in dump:
            if line.startswith("ResourceSpans #"):
                resource, section = {}, "resource"
            elif line == "Resource attributes:":
                section = "resource"
            elif line.startswith("InstrumentationScope ") and not line.endswith("attributes:"):
                scope = line[len("InstrumentationScope ") :].strip()
            elif line.startswith("Span #"):
                spans.append(CollectedSpan(resource=dict(resource), scope=scope))
                section = "span"
            elif line == "Attributes:":
                section = "attributes"
            elif line == "Events:" or line.startswith("SpanEvent #"):
                section = "events"
            elif line == "Links:" or line.startswith("SpanLink #"):
                section = "links"
            elif m := _FIELD.match(line):
                if section == "span" and spans:
                    key = m.group(1).lower().replace(" ", "_")
                    setattr(spans[-1], "span_id" if key == "id" else key, m.group(2))
            elif m := _TOP.match(line):
                if section == "resource":
                    resource[m.group(1)] = m.group(2)
                elif section == "attributes" and spans:
                    spans[-1].attributes[m.group(1)] = m.group(2)
            elif line.startswith("     -> Name: ") and section == "events" and spans:
                spans[-1].events.append(line[len("     -> Name: ") :])
            elif line.startswith("     -> ID: ") and section == "links" and spans:
                spans[-1].links.append(line[len("     -> ID: ") :])
    return spans


def parse_metrics(text: str) -> List[CollectedMetric]:
    metrics: List[CollectedMetric] = []
    for dump in _dumps(text, "ResourceMetrics #"):
        for line in dump:
            if line.startswith("Metric #"):
                metrics.append(CollectedMetric())
            elif not metrics:
                continue
            elif line.startswith("     -> Name: ") and not metrics[-1].name:
                metrics[-1].name = line[len("     -> Name: ") :]
            elif line.startswith("     -> DataType: "):
                metrics[-1].data_type = line[len("     -> DataType: ") :]
            elif metrics[-1].data_type:
                metrics[-1].points.append(line)
    return metrics


def parse_logs(text: str) -> List[CollectedLog]:
    logs: List[CollectedLog] = []
    for dump in _dumps(text, "ResourceLog #"):
        section = ""
        for line in dump:
            if line.startswith("LogRecord #"):
                logs.append(CollectedLog())
                section = "record"
            elif not logs:
                continue
            elif line.startswith("Body: "):
                logs[-1].body = line[len("Body: ") :]
            elif line.startswith("SeverityText: "):
                logs[-1].severity_text = line[len("SeverityText: ") :]
            elif line.startswith("SeverityNumber: "):
                logs[-1].severity_number = line[len("SeverityNumber: ") :]
            elif line.startswith("Trace ID: "):
                logs[-1].trace_id = line[len("Trace ID: ") :]
                section = "record"
            elif line.startswith("Span ID: "):
                logs[-1].span_id = line[len("Span ID: ") :]
            elif line == "Attributes:":
                section = "attributes"
            elif (m := _TOP.match(line)) and section == "attributes":
                logs[-1].attributes[m.group(1)] = m.group(2)
    return logs


class Collector:
    """A running collector on two free loopback ports; ``stop`` kills it."""

    def __init__(self) -> None:
        binary = install()
        template = (REPO / "scripts" / "collector" / "config.yaml.tmpl").read_text(encoding="utf-8")
        for placeholder in ("__HTTP_ENDPOINT__", "__GRPC_ENDPOINT__"):
            assert placeholder in template, f"the collector config template has no {placeholder}"
        failures = []
        # A port free when picked can be taken before the collector binds it: try again.
        for _ in range(3):
            self.port, grpc_port = free_port(), free_port()
            if grpc_port == self.port:
                continue
            self.dir = Path(tempfile.mkdtemp(prefix="polytel-collector-"))
            config = self.dir / "otelcol.yaml"
            config.write_text(
                template.replace("__HTTP_ENDPOINT__", f"127.0.0.1:{self.port}").replace(
                    "__GRPC_ENDPOINT__", f"127.0.0.1:{grpc_port}"
                ),
                encoding="utf-8",
            )
            self.stderr_path = self.dir / "otelcol.stderr"
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [str(binary), f"--config={config}"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            why = self._wait_ready()
            if why is None:
                return
            failures.append(f"port {self.port}: {why}\n--- collector stderr ---\n{self.output()}")
            self.stop()
            if "address already in use" not in self.output():
                break
        raise AssertionError("the OpenTelemetry Collector did not start:\n" + "\n".join(failures))

    def _wait_ready(self) -> Optional[str]:
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                return f"the collector exited early with {self.proc.returncode}"
            if READY_LOG in self.output():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return None
                except OSError:
                    pass
            if time.monotonic() > deadline:
                return "not ready after 30 s"
            time.sleep(0.02)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for(self, what: str, parse: Callable[[str], List[T]], ok: Callable[[List[T]], bool]) -> List[T]:
        deadline = time.monotonic() + 30
        while True:
            found = parse(self.output())
            if ok(found):
                return found
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {what} from the collector, parsed {len(found)}\n"
                    f"--- collector stderr ---\n{self.output()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
