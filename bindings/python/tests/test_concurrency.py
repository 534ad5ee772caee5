"""Threads, asyncio tasks and fork: the current span follows contextvars, the
buffer takes records from many threads, and a forked child starts afresh."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest

import polytel

from .conftest import Capture, attrs, configure_json


def test_many_threads_record_at_once(capture: Capture) -> None:
    configure_json(capture, max_export_batch_size=64)
    threads, per_thread = 8, 150
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        with polytel.span(f"thread {n}"):
            for i in range(per_thread - 1):
                with polytel.span(f"thread {n} step {i}") as s:
                    s.set_attribute("step", i)
                polytel.counter("steps").add(1, {"thread": n})

    ts = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert polytel.shutdown(30).flushed
    spans = capture.spans()
    assert len(spans) == threads * per_thread
    assert len({s["spanId"] for s in spans}) == len(spans), "span ids are unique across threads"
    roots = {s["name"]: s for s in spans if s["name"].count(" ") == 1}
    for s in spans:
        if "step" in s["name"]:
            root = roots[" ".join(s["name"].split(" ")[:2])]
            assert s["parentSpanId"] == root["spanId"] and s["traceId"] == root["traceId"], s["name"]
    (point_sets,) = [m["sum"]["dataPoints"] for name, m in capture.metrics().items() if name == "steps"]
    assert sorted(p["asDouble"] for p in point_sets) == [per_thread - 1] * threads


def test_a_new_thread_starts_a_new_trace_unless_given_the_context(capture: Capture) -> None:
    configure_json(capture)
    seen: Dict[str, str] = {}
    with polytel.span("request") as request:

        def child(label: str) -> None:
            with polytel.span(label) as s:
                seen[label] = s.trace_id

        t = threading.Thread(target=child, args=("plain thread",))
        t.start()
        t.join()
        ctx = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(ctx.run, child, "with copied context").result()
    assert seen["with copied context"] == request.trace_id
    assert seen["plain thread"] != request.trace_id


def test_asyncio_tasks_each_keep_their_own_current_span(capture: Capture) -> None:
    configure_json(capture)

    async def agent(n: int) -> None:
        with polytel.span(f"agent {n}"):
            for i in range(3):
                await asyncio.sleep(0.001 * ((n + i) % 3))
                with polytel.span(f"agent {n} call {i}"):
                    await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(agent(n) for n in range(5)))

    asyncio.run(main())
    assert polytel.force_flush(10)
    spans = {s["name"]: s for s in capture.spans()}
    assert len(spans) == 5 * 4
    for n in range(5):
        for i in range(3):
            call = spans[f"agent {n} call {i}"]
            assert call["parentSpanId"] == spans[f"agent {n}"]["spanId"], (n, i)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no fork()")
def test_a_forked_child_starts_afresh_and_nothing_is_sent_twice(capture: Capture) -> None:
    configure_json(capture)
    with polytel.span("parent before fork"):
        pass  # buffered, not yet sent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(r)
            with polytel.span("child") as s:
                s.set_attribute("pid", os.getpid())
            ok = polytel.shutdown(10).flushed
            os.write(w, f"{s.trace_id}".encode())
            code = 0 if ok else 2
        finally:
            os._exit(code)
    os.close(w)
    child_trace = b""
    while chunk := os.read(r, 100):
        child_trace += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with polytel.span("parent after fork") as after:
        pass
    assert polytel.shutdown(10).flushed
    spans = capture.spans()
    names = sorted(s["name"] for s in spans)
    assert names == ["child", "parent after fork", "parent before fork"], names
    child = next(s for s in spans if s["name"] == "child")
    assert child["traceId"] == child_trace.decode()
    assert child["_resource"]["process.pid"] != os.getpid(), "the child reports its own pid"
    assert child["_resource"]["process.pid"] == dict(_attrs(child))["pid"]
    assert child["traceId"] != after.trace_id, "the child draws ids from a new seed"


def _attrs(span: Dict[str, Any]) -> List[Tuple[str, Any]]:
    return list(attrs(span["attributes"]).items())
