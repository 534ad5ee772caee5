"""Replays tests/conformance/scenarios through the Python API with the fixed
clock and seed, and compares every export body with the golden files byte for
byte (see tests/conformance/README.md)."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import polytel
from polytel import _state

from .conftest import REPO, Capture

CONFORMANCE = REPO / "tests" / "conformance"
SCENARIOS = sorted((CONFORMANCE / "scenarios").glob("*.json"))


class Clock:
    """``start``, then ``start + step``, … for the application's readings; the
    export worker's readings return the latest value without advancing it."""

    def __init__(self, start: int, step: int) -> None:
        self.start, self.step = start, step
        self.readings = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            if threading.current_thread().name == "polytel-export":
                return self.start + self.step * self.readings
            now = self.start + self.step * self.readings
            self.readings += 1
            return now


def py(v: Any) -> Any:
    """A scenario's attribute value (the batch JSON form) as a Python value."""
    if isinstance(v, dict):
        if "double" in v:
            return float(v["double"])
        if "bytes" in v:
            return base64.b64decode(v["bytes"])
        if "map" in v:
            return {k: py(x) for k, x in v["map"].items()}
        raise AssertionError(f"unknown value {v!r}")
    if isinstance(v, list):
        return [py(x) for x in v]
    return v


def py_attrs(a: Any) -> Dict[str, Any]:
    return {k: py(v) for k, v in (a or {}).items()}


def start_operation(step: Dict[str, Any], spans: Dict[str, polytel.Span]) -> Optional[polytel.Operation]:
    """A GenAI operation step's operation, started (None: not such a step)."""
    parent = spans[step["parent"]] if "parent" in step else None
    attributes = py_attrs(step.get("attributes")) or None
    if "llm_call" in step:
        spec = polytel.llm_call(
            step["provider"],
            step["model"],
            operation=step.get("operation", "chat"),
            attributes=attributes,
            parent=parent,
        )
    elif "agent" in step:
        spec = polytel.agent(step["name"], attributes=attributes, parent=parent)
    elif "tool" in step:
        spec = polytel.tool(step["name"], attributes=attributes, parent=parent)
    elif "workflow" in step:
        spec = polytel.workflow(step["name"], attributes=attributes, parent=parent)
    elif "memory" in step:
        spec = polytel.memory(step["operation"], step["store"], attributes=attributes, parent=parent)
    else:
        return None
    return spec.start()


_OPERATION_STEPS = ("llm_call", "agent", "tool", "workflow", "memory")


def replay(
    scenario: Dict[str, Any], capture: Capture
) -> Tuple[List[Tuple[str, bytes]], List[str], List[List[Dict[str, Any]]]]:
    clock = Clock(int(scenario["clock"]["start"]), int(scenario["clock"]["step"]))
    options = dict(scenario["options"])
    options["endpoint"] = capture.endpoint
    polytel.configure(
        env=scenario["env"],
        seed=int(scenario["seed"]),
        clock=clock,
        # The golden resource must not depend on the machine the test runs
        # on: no detection facts (the scenarios pin telemetry.sdk.language).
        host_facts={},
        **options,
    )
    pipeline = _state.pipeline
    assert pipeline is not None
    spans: Dict[str, polytel.Span] = {}
    instruments: Dict[str, Any] = {}
    injects: List[str] = []
    operations: Dict[str, polytel.Operation] = {}
    summaries: List[List[Dict[str, Any]]] = []
    for step in scenario["steps"]:
        first = next(iter(step))
        if first in _OPERATION_STEPS:
            op = start_operation(step, spans)
            assert op is not None
            spans[step[first]] = operations[step[first]] = op
            continue
        if "start" in step:
            parent: Any = None
            if "parent" in step:
                parent = spans[step["parent"]]
            if "remote_parent" in step:
                parent = polytel.extract(step["remote_parent"])
                assert parent.span_context is not None, "a valid remote parent"
            links = [
                polytel.Link(spans[link["to"]], py_attrs(link.get("attributes"))) for link in step.get("links", [])
            ]
            spans[step["start"]] = polytel.span(
                step["name"],
                py_attrs(step.get("attributes")),
                kind=step.get("kind", "internal"),
                parent=parent,
                links=links or None,
            )
        elif "set_attribute" in step:
            spans[step["set_attribute"]].set_attribute(step["key"], py(step["value"]))
        elif "add_event" in step:
            spans[step["add_event"]].add_event(step["name"], py_attrs(step.get("attributes")) or None)
        elif "record_exception" in step:
            spans[step["record_exception"]].record_exception(
                type=step["type"], message=step.get("message", ""), stacktrace=step.get("stacktrace", "")
            )
        elif "set_status" in step:
            spans[step["set_status"]].set_status(step["code"], step.get("message"))
        elif "end" in step:
            spans[step["end"]].end()
        elif "inject" in step:
            headers = polytel.inject(span=spans[step["inject"]])
            injects.append(json.dumps(dict(sorted(headers.items())), separators=(",", ":"), ensure_ascii=False))
        elif "instrument" in step:
            kind, name = step["kind"], step["name"]
            unit, description = step.get("unit", ""), step.get("description", "")
            if kind == "counter":
                instruments[step["instrument"]] = polytel.counter(name, unit=unit, description=description)
            elif kind == "up_down_counter":
                instruments[step["instrument"]] = polytel.up_down_counter(name, unit=unit, description=description)
            elif kind == "histogram":
                instruments[step["instrument"]] = polytel.histogram(
                    name, unit=unit, description=description, boundaries=step.get("boundaries")
                )
            elif kind == "gauge":
                instruments[step["instrument"]] = polytel.gauge(name, unit=unit, description=description)
            else:
                raise AssertionError(f"unknown instrument kind {kind}")
        elif "add" in step or "record" in step:
            inst = instruments[step.get("add") or step["record"]]
            measure = inst.add if "add" in step else inst.record
            attrs = py_attrs(step.get("attributes")) or None
            if "span" in step:
                with polytel.use_span(spans[step["span"]]):
                    measure(step["value"], attrs)
            else:
                measure(step["value"], attrs)
        elif "log" in step:
            polytel.log(
                step["log"],
                step.get("message", ""),
                py_attrs(step.get("attributes")) or None,
                event_name=step.get("event_name"),
                span=spans[step["span"]] if "span" in step else None,
            )
        elif "usage" in step:
            counts = {k: v for k, v in step.items() if k != "usage"}
            operations[step["usage"]].record_usage(**counts)
        elif "response_model" in step:
            operations[step["response_model"]].set_response_model(step["model"])
        elif "cost" in step:
            operations[step["cost"]].record_cost(step["usd"])
        elif "capture" in step:
            op = operations[step["capture"]]
            if "input" in step:
                op.record_input(py(step["input"]))
            if "output" in step:
                op.record_output(py(step["output"]))
        elif "stats" in step:
            summaries.append(polytel.stats()["operations"])
        else:
            raise AssertionError(f"unknown step {step}")
    report = polytel.shutdown(timeout=10)
    assert report.flushed and report.abandoned == 0, report
    stats = pipeline.stats()
    for signal in ("spans", "metrics", "logs"):
        assert stats[signal]["dropped"] == {}, f"nothing may be dropped: {stats}"
    exports = [("json" if r.is_json else "pb", r.body) for r in capture.requests]
    assert exports, "the scenario exported nothing"
    return exports, injects, summaries


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_matches_golden_payloads(path: Path, capture: Capture) -> None:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    exports, injects, summaries = replay(scenario, capture)
    golden = CONFORMANCE / "golden" / path.stem
    files = {f"export-{i}.{ext}": body for i, (ext, body) in enumerate(exports)}
    if injects:
        files["inject.json"] = ("\n".join(injects) + "\n").encode("utf-8")
    produced = sorted([*files, "operations.json"] if summaries else files)
    expected = sorted(p.name for p in golden.iterdir())
    assert produced == expected, f"{path.stem}: the files produced differ from the golden ones"
    if summaries:
        # The operations summary compares as parsed JSON, one line per stats step.
        lines = (golden / "operations.json").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(summaries), f"{path.stem}/operations.json: {len(summaries)} stats steps"
        for i, (line, got) in enumerate(zip(lines, summaries)):
            assert got == json.loads(line), f"{path.stem}/operations.json line {i + 1} differs"
    for name, body in files.items():
        want = (golden / name).read_bytes()
        assert body == want, f"{path.stem}/{name}: differs from the golden file ({len(body)} vs {len(want)} bytes)"


def test_every_scenario_is_replayed() -> None:
    assert len(SCENARIOS) >= 6, f"scenarios missing from {CONFORMANCE / 'scenarios'}"
