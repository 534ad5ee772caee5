"""Delivery under failure (issue 10): the binding against `polytel
fault-receiver`, a loopback OTLP/HTTP receiver scripted per request (503s,
429 with Retry-After, 400, 413, partial success, hanging, resets). The core
decides every retry, split and drop; these tests check what reaches the
receiver, what the core's counters (``polytel.stats()``) say, and that
shutdown and the application's calls never wait on a dead receiver."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest

import polytel

from .collector import free_port
from .conftest import Capture, configure_json, polytel_bin

Stats = Dict[str, Any]


@dataclass
class FaultReceiver:
    """A running `polytel fault-receiver` and its control endpoints."""

    proc: subprocess.Popen[str]
    url: str

    def stats(self) -> Stats:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as r:
            got: Stats = json.load(r)
        return got

    def script(self, script: Dict[str, Any]) -> None:
        """Replaces the script: ``{"steps": [step, ...], "then": step}``."""
        req = urllib.request.Request(f"{self.url}/script", data=json.dumps(script).encode(), method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 204, r.read()

    def wait(self, ok: Callable[[Stats], bool], timeout: float) -> Stats:
        """Polls /stats until ``ok`` holds; fails with the last stats after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if ok(s):
                return s
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s; the receiver saw {s}")
            time.sleep(0.02)


def _binary() -> Path:
    env = os.environ.get("POLYTEL_BIN")
    binary = Path(env) if env else polytel_bin()
    assert binary is not None and binary.is_file(), (
        "the polytel command is not built; run `cargo build --release --locked -p polytel` "
        "(scripts/test.sh does) or set POLYTEL_BIN — it is required for these tests"
    )
    return binary


@pytest.fixture
def faults() -> Iterator[FaultReceiver]:
    proc = subprocess.Popen(
        [str(_binary()), "fault-receiver", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://"), (
        f"fault-receiver printed {url!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
    )
    try:
        yield FaultReceiver(proc, url)
    finally:
        # Shut down before the receiver goes: a hung request then ends now.
        polytel.shutdown(timeout=0.5)
        proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def configure(endpoint: str, **options: Any) -> None:
    """OTLP/HTTP (protobuf, the default) to ``endpoint``, from an empty environment."""
    polytel.configure(env={}, backend="otlp", endpoint=endpoint, **options)


def record_spans(n: int, offset: int = 0) -> None:
    for i in range(offset, offset + n):
        with polytel.span("work", {"i": i, "kind": "test"}):
            pass


def record_logs(n: int, offset: int = 0) -> None:
    for i in range(offset, offset + n):
        polytel.log("info", "step done", {"i": i})


def counters(stats: Stats, signal: str) -> Dict[str, Any]:
    """The core's delivery counters of one signal."""
    s = stats[signal]
    return {k: s[k] for k in ("received", "exported", "dropped", "retried", "queued", "pending")}


def no_host_drops(stats: Stats) -> None:
    assert stats["host"]["buffer_dropped"] == {"spans": 0, "metrics": 0, "logs": 0}
    assert stats["host"]["lost_to_traps"] == 0


# -- a transient outage ---------------------------------------------------------------


def test_transient_outage_loses_nothing_and_sends_nothing_twice(faults: FaultReceiver) -> None:
    # Every request fails with 503 (Retry-After: 1) for the first 3 seconds,
    # while spans and logs keep coming; then the receiver is healthy. The
    # outage is timed rather than counted ("times"): how many requests it
    # takes depends on how the records fall into batches.
    faults.script({"then": {"status": 503, "retry_after": "1"}})
    n, rounds = 300, 6
    configure(faults.url, schedule_delay_ms=200, log_schedule_delay_ms=200, max_export_batch_size=64)
    start = time.monotonic()
    for r in range(rounds):
        record_spans(n // rounds, r * (n // rounds))
        record_logs(n // rounds, r * (n // rounds))
        time.sleep(0.25)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - start)))
    during = faults.stats()
    assert during["spans"] == 0 and during["log_records"] == 0, during
    assert during["answered"].get("503", 0) >= 4, during
    faults.script({"then": {"ok": True}})

    got = faults.wait(lambda s: s["spans"] >= n and s["log_records"] >= n, timeout=5)
    stats = polytel.stats()
    for signal in ("spans", "logs"):
        c = counters(stats, signal)
        assert c["received"] == n and c["exported"] == n, (signal, c)
        assert c["dropped"] == {}, (signal, c)
        assert c["retried"] > 0, (signal, c)
        assert c["queued"] == 0 and c["pending"] == 0, (signal, c)
    no_host_drops(stats)
    report = polytel.shutdown(timeout=2)
    assert report.abandoned == 0 and report.flushed, report

    got = faults.stats()
    assert got["spans"] == n and got["duplicate_spans"] == 0, got
    assert got["log_records"] == n, got
    assert set(got["answered"]) == {"503", "ok"}, got


# -- Retry-After -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        pytest.param({"status": 429, "retry_after": "2"}, id="seconds"),
        # An HTTP-date has whole seconds: 3 s ahead is between 2 and 3 s away.
        pytest.param({"status": 429, "retry_after_date": 3}, id="http-date"),
    ],
)
def test_retry_after_is_honoured(faults: FaultReceiver, step: Dict[str, Any]) -> None:
    faults.script({"steps": [step]})
    n = 50
    configure(faults.url)
    record_spans(n)
    start = time.monotonic()
    # The first attempt, answered 429; the flush may or may not wait for the retry.
    polytel.force_flush(5)
    got = faults.wait(lambda s: s["spans"] >= n, timeout=6)
    waited = time.monotonic() - start
    assert waited >= 1.9, f"delivered {waited:.2f} s after a 429 asking for 2 s or more"
    assert got["requests"] == 2 and got["answered"] == {"429": 1, "ok": 1}, got
    assert got["spans"] == n and got["duplicate_spans"] == 0, got
    c = counters(polytel.stats(), "spans")
    assert c == {"received": n, "exported": n, "dropped": {}, "retried": n, "queued": 0, "pending": 0}


def test_a_retry_goes_when_its_retry_after_ends_not_at_the_next_schedule(faults: FaultReceiver) -> None:
    faults.script({"steps": [{"status": 503, "retry_after": "1"}]})
    # A full batch goes at once; the schedules would fire only after 4 s.
    configure(faults.url, max_export_batch_size=10, schedule_delay_ms=4000, log_schedule_delay_ms=4000)
    start = time.monotonic()
    record_spans(10)
    got = faults.wait(lambda s: s["spans"] >= 10, timeout=6)
    took = time.monotonic() - start
    assert 0.9 <= took < 2.5, f"delivered after {took:.2f} s"
    assert got["requests"] == 2, got


# -- what is not retried -------------------------------------------------------------------


def test_400_is_dropped_and_not_retried(faults: FaultReceiver) -> None:
    faults.script({"steps": [{"status": 400}]})
    n = 40
    configure(faults.url)
    record_spans(n)
    assert polytel.force_flush(5)
    stats = polytel.stats()
    assert counters(stats, "spans") == {
        "received": n,
        "exported": 0,
        "dropped": {"rejected": n},
        "retried": 0,
        "queued": 0,
        "pending": 0,
    }
    # Nothing is left to send: another flush sends nothing.
    assert polytel.force_flush(5)
    got = faults.stats()
    assert got["requests"] == 1 and got["answered"] == {"400": 1}, got
    assert got["spans"] == 0, got
    report = polytel.shutdown(timeout=2)
    assert report.abandoned == 0, report


def test_partial_success_is_counted_and_not_retried(faults: FaultReceiver) -> None:
    faults.script({"steps": [{"partial_success": 3, "message": "three spans had no name"}]})
    n = 40
    configure(faults.url)
    record_spans(n)
    assert polytel.force_flush(5)
    stats = polytel.stats()
    assert counters(stats, "spans") == {
        "received": n,
        "exported": n - 3,
        "dropped": {"partial_success": 3},
        "retried": 0,
        "queued": 0,
        "pending": 0,
    }
    assert polytel.force_flush(5)
    got = faults.stats()
    assert got["requests"] == 1 and got["answered"] == {"partial_success": 1}, got
    assert got["spans"] == n and got["duplicate_spans"] == 0, got


# -- 413 ---------------------------------------------------------------------------------------


def test_413_splits_the_batch(faults: FaultReceiver) -> None:
    faults.script({"steps": [{"status": 413}]})
    n = 100
    configure(faults.url)
    record_spans(n)
    assert polytel.force_flush(5)
    got = faults.wait(lambda s: s["spans"] >= n, timeout=5)
    assert got["answered"].get("413") == 1 and got["answered"].get("ok", 0) >= 2, got
    assert got["spans"] == n and got["duplicate_spans"] == 0, got
    c = counters(polytel.stats(), "spans")
    assert c == {"received": n, "exported": n, "dropped": {}, "retried": 0, "queued": 0, "pending": 0}


# -- connection failures and odd answers ----------------------------------------------------------


@pytest.mark.parametrize("step", [{"reset": True}, {"close": True}, {"status": 503}], ids=["reset", "close", "503"])
def test_a_failed_attempt_is_retried_and_delivers_once(faults: FaultReceiver, step: Dict[str, Any]) -> None:
    faults.script({"steps": [step]})
    n = 30
    configure(faults.url)
    record_spans(n)
    assert polytel.force_flush(5)
    # Backoff without Retry-After: between 0.5 and 1 s before the second attempt.
    got = faults.wait(lambda s: s["spans"] >= n, timeout=5)
    assert got["requests"] == 2 and got["answered"].get("ok") == 1, got
    assert got["spans"] == n and got["duplicate_spans"] == 0, got
    c = counters(polytel.stats(), "spans")
    assert c == {"received": n, "exported": n, "dropped": {}, "retried": n, "queued": 0, "pending": 0}


def test_a_200_that_is_not_otlp_is_delivered_not_retried(faults: FaultReceiver) -> None:
    faults.script({"steps": [{"garbage": True}]})
    n = 30
    configure(faults.url)
    record_spans(n)
    assert polytel.force_flush(5)
    c = counters(polytel.stats(), "spans")
    assert c == {"received": n, "exported": n, "dropped": {}, "retried": 0, "queued": 0, "pending": 0}
    assert polytel.force_flush(5)
    got = faults.stats()
    assert got["requests"] == 1 and got["spans"] == n, got


# -- shutdown with an unreachable receiver -----------------------------------------------------------


def test_shutdown_with_a_hanging_receiver_returns_within_its_deadline(faults: FaultReceiver) -> None:
    faults.script({"then": {"hang": True}})
    n = 100
    configure(faults.url)
    record_spans(n)
    record_logs(n)
    # The worker is inside the hung request once the receiver has it.
    polytel.force_flush(0.2)
    faults.wait(lambda s: s["answered"].get("hang", 0) >= 1, timeout=2)
    before = polytel.stats()
    in_core = {signal: counters(before, signal) for signal in ("spans", "logs")}
    deadline = 1.5
    start = time.monotonic()
    report = polytel.shutdown(timeout=deadline)
    took = time.monotonic() - start
    assert took < deadline + 0.5, f"shutdown({deadline}) took {took:.2f} s"
    assert not report and not report.flushed, report
    # Everything recorded was still queued or pending, and is reported.
    assert report.abandoned == 2 * n, (report, in_core)
    assert faults.stats()["spans"] == 0


def test_shutdown_with_a_closed_port_returns_within_its_deadline() -> None:
    port = free_port()  # bound and closed again: connections are refused
    n = 100
    configure(f"http://127.0.0.1:{port}")
    record_spans(n)
    deadline = 1.5
    start = time.monotonic()
    report = polytel.shutdown(timeout=deadline)
    took = time.monotonic() - start
    assert took < deadline + 0.5, f"shutdown({deadline}) took {took:.2f} s"
    assert not report and report.abandoned == n, report


# -- a dead receiver: memory stays bounded, counters add up ---------------------------------------------


def test_a_hanging_receiver_keeps_the_queues_bounded_and_counts_every_drop(faults: FaultReceiver) -> None:
    faults.script({"then": {"hang": True}})
    bound, n, step = 512, 20_000, 2_000
    configure(faults.url, max_queue_size=bound, log_max_queue_size=bound)
    seen: Optional[Stats] = None
    for offset in range(0, n, step):
        record_spans(step, offset)
        record_logs(step, offset)
        pipeline = polytel._state.pipeline
        assert pipeline is not None
        buffers = {"spans": len(pipeline._spans), "logs": len(pipeline._logs)}
        assert max(buffers.values()) <= bound, buffers
        # stats() moves the host's buffers into the core: the core's queue
        # fills too, and the bounds must hold at every point.
        seen = polytel.stats()
        for signal in ("spans", "logs"):
            c = counters(seen, signal)
            assert c["queued"] <= bound and c["pending"] <= bound, (offset, signal, c)
    assert seen is not None
    got = faults.stats()
    assert got["answered"].get("hang", 0) >= 1 and set(got["answered"]) == {"hang"}, got
    host = seen["host"]
    assert host["buffered"] == 0 and host["lost_to_traps"] == 0, host
    for signal, accepted in (("spans", got["spans"]), ("logs", got["log_records"])):
        c = counters(seen, signal)
        dropped = sum(c["dropped"].values())
        host_dropped = host["buffer_dropped"][signal]
        # Nothing is dropped for any other reason than full queues.
        assert set(c["dropped"]) == {"queue_full"}, (signal, c)
        assert c["received"] + host_dropped == n, (signal, c, host)
        assert accepted == c["exported"] == 0, (signal, c, got)
        assert n == accepted + dropped + host_dropped + c["queued"] + c["pending"], (
            f"{signal}: recorded {n} != accepted {accepted} + core dropped {dropped} + host dropped "
            f"{host_dropped} + queued {c['queued']} + pending {c['pending']}"
        )
    # What shutdown drops is what the core held: within both signals' bounds.
    report = polytel.shutdown(timeout=0.5)
    held = sum(counters(seen, s)["queued"] + counters(seen, s)["pending"] for s in ("spans", "logs"))
    assert report.abandoned == held, (report, held)
    assert report.abandoned <= 2 * (bound + bound), report


def test_self_metrics_export_the_cores_counters(capture: Capture) -> None:
    capture.answers.append((400, {}, b"rejected"))
    configure_json(capture, self_metrics=True)
    with polytel.span("rejected"):
        pass
    assert polytel.force_flush(10)
    # The second collection carries the first export's outcome.
    assert polytel.force_flush(10)
    metrics = capture.metrics()
    for name in ("polytel.exported", "polytel.dropped", "polytel.retried", "polytel.queued", "polytel.pending"):
        assert name in metrics, sorted(metrics)
    points = metrics["polytel.dropped"]["sum"]["dataPoints"]
    reasons = {tuple(sorted((a["key"], a["value"]["stringValue"]) for a in p["attributes"])): p for p in points}
    assert (("reason", "rejected"), ("signal", "spans")) in reasons, points


def test_measurements_reach_the_core_while_a_request_hangs(faults: FaultReceiver) -> None:
    faults.script({"then": {"hang": True}})
    configure(faults.url, max_queue_size=512, max_export_batch_size=128)
    # A span export goes first and hangs, holding the export worker.
    record_spans(128)
    faults.wait(lambda s: s["requests"] >= 1, timeout=5)
    counter = polytel.counter("calls")
    # Bursts well under the buffer's bound, with pauses in which the GIL lets
    # the shipper run (as in an app that does anything else).
    for _ in range(100):
        for _ in range(200):
            counter.add(1, {"tool": "search"})
        time.sleep(0.01)
    # The core aggregates them in one series; none was lost in the host's buffer.
    stats = polytel.stats()
    assert stats["host"]["buffer_dropped"]["metrics"] == 0, stats
    assert stats["metrics"]["received"] == 20_000, stats
