"""How the package runs: trap recovery, the compiled-code cache, a missing
component, the exit hook, shutdown against a dead backend, Prometheus."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Dict

import pytest

import polytel
from polytel import _core, _state

from .conftest import Capture, _handler, configure_json

PACKAGE_DIR = Path(polytel.__file__).resolve().parent


def run_python(code: str, env: Dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_trap_is_recovered_from_and_counted(capture: Capture) -> None:
    configure_json(capture, core_memory_limit=32 << 20)
    with polytel.span("too big for the core's memory") as huge:
        huge.set_attribute("payload", "x" * (48 << 20))
    assert polytel.force_flush(30)
    assert polytel.stats()["host"]["lost_to_traps"] == 1
    with polytel.span("after the trap"):
        pass
    polytel.counter("still.works").add(1)
    assert polytel.force_flush(10)
    assert [s["name"] for s in capture.spans()] == ["after the trap"], "a fresh core instance carries on"


def test_instruments_keep_their_ids_across_a_trap(capture: Capture) -> None:
    configure_json(capture, core_memory_limit=32 << 20)
    first = polytel.counter("first")
    second = polytel.counter("second")
    with polytel.span("trap") as s:
        s.set_attribute("payload", "x" * (48 << 20))
    assert polytel.force_flush(30)
    second.add(5)
    first.add(1)
    assert polytel.shutdown(10).flushed
    m = capture.metrics()
    assert m["second"]["sum"]["dataPoints"][0]["asDouble"] == 5
    assert m["first"]["sum"]["dataPoints"][0]["asDouble"] == 1


def test_compiled_code_is_cached_on_disk(tmp_path: Path) -> None:
    code = """
        import polytel, time
        t = time.perf_counter()
        polytel.configure(env={}, backend="none")
        print(time.perf_counter() - t)
        polytel.shutdown(1)
    """
    env = {"POLYTEL_CACHE": str(tmp_path)}
    cold = run_python(code, env)
    assert cold.returncode == 0, cold.stderr
    cached = list(tmp_path.glob("python-core-*-wasmtime-*.cwasm"))
    assert len(cached) == 1, list(tmp_path.iterdir())
    assert cached[0].stat().st_size > 1_000_000
    stamp = cached[0].stat().st_mtime_ns
    warm = run_python(code, env)
    assert warm.returncode == 0, warm.stderr
    assert cached[0].stat().st_mtime_ns == stamp, "the warm start read the cache instead of writing it"
    # A damaged cache file is compiled afresh and replaced.
    cached[0].write_bytes(b"not compiled code")
    again = run_python(code, env)
    assert again.returncode == 0, again.stderr
    assert cached[0].stat().st_size > 1_000_000
    assert "Exception ignored" not in cold.stderr + warm.stderr + again.stderr


def test_a_missing_component_fails_with_a_clear_message(tmp_path: Path) -> None:
    broken = tmp_path / "polytel"
    shutil.copytree(PACKAGE_DIR, broken, ignore=shutil.ignore_patterns("polytel.wasm", "__pycache__"))
    result = run_python(
        """
        import polytel
        with polytel.span("fine before configure"):
            pass
        try:
            polytel.configure(env={})
        except polytel.ComponentMissingError as e:
            print(e)
        """,
        {"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "core component is missing" in result.stdout
    assert "bindings/python/build.sh" in result.stdout


def test_telemetry_is_flushed_at_exit(capture: Capture) -> None:
    result = run_python(
        f"""
        import polytel
        polytel.configure(env={{}}, backend="otlp", endpoint={capture.endpoint!r}, protocol="http/json")
        with polytel.span("flushed by the exit hook"):
            polytel.log("info", "and this log record")
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    assert [s["name"] for s in capture.spans()] == ["flushed by the exit hook"]
    assert [r["body"]["stringValue"] for r in capture.logs()] == ["and this log record"]
    assert "Exception ignored" not in result.stderr, result.stderr


def test_a_dead_backend_does_not_hold_up_shutdown() -> None:
    polytel.configure(env={}, backend="otlp", endpoint="http://127.0.0.1:9")
    pipeline = _state.pipeline
    assert pipeline is not None
    for i in range(10):
        with polytel.span(f"s{i}"):
            pass
    started = time.monotonic()
    report = polytel.shutdown(2)
    assert time.monotonic() - started < 4
    assert report.abandoned == 10, report
    assert pipeline.stats()["spans"]["dropped"]["shutdown"] == 10


def test_prometheus_scrapes_current_metrics(capture: Capture) -> None:
    # The worker sleeps for a minute after its first cycle, so only the scrape can ship.
    configure_json(capture, metrics_exporter="prometheus", prometheus_listen="127.0.0.1:0", schedule_delay_ms=60_000)
    polytel.force_flush(10)
    pipeline = _state.pipeline
    assert pipeline is not None and pipeline.prometheus_address is not None
    host, port = pipeline.prometheus_address
    polytel.counter("agent.tool.calls", unit="{call}").add(3, {"tool": "search"})
    polytel.observable_gauge("agent.memory.entries", lambda: 42)
    with polytel.tool("web_search"):
        pass
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:
        body = resp.read().decode()
        content_type = resp.headers["Content-Type"]
    assert content_type.startswith("text/plain")
    assert re.search(r'^agent_tool_calls_total\{[^}]*tool="search"[^}]*\} 3$', body, re.M), body
    assert re.search(r"^agent_memory_entries(\{[^}]*\})? 42$", body, re.M), body
    # The operation that just ended is in this scrape: its span went to the core first.
    count = r'^gen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_tool_name="web_search"[^}]*\} 1$'
    assert re.search(count, body, re.M), body
    req = urllib.request.Request(
        f"http://{host}:{port}/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert resp.read().decode().rstrip().endswith("# EOF")


def test_worker_survives_a_failing_observable_callback(capture: Capture) -> None:
    configure_json(capture)

    def broken() -> float:
        raise RuntimeError("sensor offline")

    bad = polytel.observable_gauge("broken", broken)
    good = polytel.observable_gauge("good", lambda: 1.5)
    assert polytel.shutdown(10).flushed
    metrics = capture.metrics()
    assert "good" in metrics and metrics["good"]["gauge"]["dataPoints"][0]["asDouble"] == 1.5
    bad.unregister()
    good.unregister()


def test_exports_do_not_carry_python_json_quirks(capture: Capture) -> None:
    # Keys that are not strings, huge integers and cyclic containers must not
    # cost the batch.
    configure_json(capture)
    cyclic: list = []  # type: ignore[type-arg]
    cyclic.append(cyclic)
    with polytel.span("odd values", {1: "int key", "huge": 2**70, "cyclic": cyclic}) as s:  # type: ignore[dict-item]
        s.set_attribute("fine", "yes")
    with polytel.span("next"):
        pass
    assert polytel.force_flush(10)
    spans = {s["name"]: s for s in capture.spans()}
    assert set(spans) == {"odd values", "next"}
    got = {kv["key"] for kv in spans["odd values"]["attributes"]}
    assert {"1", "fine", "cyclic"} <= got, got


def test_cache_dir_follows_polytel_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.setenv("POLYTEL_CACHE", "/somewhere")
    assert _core.cache_dir() == Path("/somewhere")
    mp.delenv("POLYTEL_CACHE")
    mp.setenv("XDG_CACHE_HOME", "/xdg")
    if sys.platform.startswith("linux"):
        assert _core.cache_dir() == Path("/xdg/polytel")


def test_a_full_buffer_drops_and_counts_instead_of_growing(capture: Capture) -> None:
    configure_json(capture, max_queue_size=8, max_export_batch_size=4)
    pipeline = _state.pipeline
    assert pipeline is not None
    # Hold the core so the worker cannot drain the buffer meanwhile.
    with pipeline._core_lock:
        for i in range(100):
            with polytel.span(f"s{i}"):
                pass
        dropped = pipeline._dropped[0]
    assert dropped >= 100 - 2 * 8, "the application never waits: what does not fit is dropped"
    assert polytel.force_flush(10)
    stats = polytel.stats()
    assert stats["host"]["buffer_dropped"]["spans"] == dropped
    assert stats["spans"]["exported"] + dropped == 100


def test_a_307_reaches_the_core_and_is_followed_with_the_same_body(capture: Capture) -> None:
    # urllib follows nothing: the 307 and its Location go to the core, which
    # sends the same body again, on the same origin, at its next poll.
    capture.answers.append((307, {"Location": "/moved/v1/traces"}, b""))
    configure_json(capture)
    with polytel.span("redirected"):
        pass
    assert polytel.force_flush(10)
    first, second = capture.wait_for(lambda r: len(r) >= 2)
    assert (first.path, second.path) == ("/v1/traces", "/moved/v1/traces")
    assert first.body == second.body and second.headers["content-type"] == "application/json"
    deadline = time.monotonic() + 10
    while polytel.stats()["spans"]["exported"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = polytel.stats()["spans"]
    assert (stats["exported"], stats["dropped"]) == (1, {})


def test_a_redirect_to_another_host_is_not_followed(capture: Capture) -> None:
    # Another origin would get the backend's credentials: the core drops the
    # export, counts it and names only the other host.
    elsewhere = Capture()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(elsewhere))
    try:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        target = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        capture.answers.append((307, {"Location": target}, b""))
        configure_json(capture, headers={"authorization": "Bearer s3cr3t"}, allow_insecure=True)
        with polytel.span("not followed"):
            pass
        assert polytel.force_flush(10)
        time.sleep(0.3)
        assert len(capture.requests) == 1 and elsewhere.requests == []
        stats = polytel.stats()["spans"]
        assert (stats["exported"], stats["dropped"]) == (0, {"rejected": 1})
    finally:
        server.shutdown()
        server.server_close()


def test_a_302_is_not_turned_into_a_get(capture: Capture) -> None:
    capture.answers.append((302, {"Location": "/elsewhere"}, b""))
    configure_json(capture)
    with polytel.span("moved"):
        pass
    assert polytel.force_flush(10)
    time.sleep(0.3)
    assert [r.path for r in capture.requests] == ["/v1/traces"], "no GET, no second POST"
    assert polytel.stats()["spans"]["dropped"] == {"rejected": 1}
