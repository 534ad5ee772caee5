"""The API as a new user would use it, checked in what reaches an OTLP/HTTP
receiver (JSON encoding, so the test reads it without a protobuf library)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import polytel
from polytel import _state

from .conftest import Capture, attrs, configure_json


def by_name(spans: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {s["name"]: s for s in spans}


def flush_spans(capture: Capture, n: int) -> List[Dict[str, Any]]:
    assert polytel.force_flush(timeout=10)
    spans = capture.spans()
    assert len(spans) == n, [s["name"] for s in spans]
    return spans


# -- spans ------------------------------------------------------------------------


def test_nested_spans_with_attributes_events_and_status(capture: Capture) -> None:
    configure_json(capture, service_name="research-agent")
    with polytel.span("invoke_agent research", {"gen_ai.agent.name": "research"}) as agent:
        assert polytel.current_span() is agent
        with polytel.span("chat gpt-4o", {"gen_ai.request.model": "gpt-4o"}, kind="client") as llm:
            llm.set_attribute("gen_ai.usage.input_tokens", 412)
            llm.set_attribute("gen_ai.request.temperature", 0.2)
            llm.set_attribute("gen_ai.response.finish_reasons", ["stop"])
            llm.set_attribute("flag", True)
            llm.set_attribute("blob", b"\x00\xff")
            llm.set_attribute("nested", {"inner": {"n": 1}})
            llm.set_attribute("nan", math.nan)
            llm.set_attribute("path", Path("/tmp/x"))
            llm.add_event("gen_ai.content.chunk", {"index": 0})
            llm.set_status("ok")
            llm.set_status("error", "ignored: ok is final")
        assert polytel.current_span() is agent
    assert polytel.current_span() is None

    spans = by_name(flush_spans(capture, 2))
    root, child = spans["invoke_agent research"], spans["chat gpt-4o"]
    assert child["traceId"] == root["traceId"]
    assert child["parentSpanId"] == root["spanId"]
    assert "parentSpanId" not in root or root["parentSpanId"] == ""
    assert child["kind"] == 3 and root["kind"] == 1
    a = attrs(child["attributes"])
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.usage.input_tokens"] == 412
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["flag"] is True
    assert a["blob"] == b"\x00\xff"
    assert a["nested"] == {"inner": {"n": 1}}
    assert math.isnan(a["nan"])
    assert a["path"] == "/tmp/x"
    assert [e["name"] for e in child["events"]] == ["gen_ai.content.chunk"]
    assert child["status"]["code"] == 1
    assert int(child["startTimeUnixNano"]) <= int(child["endTimeUnixNano"])
    assert int(root["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
    assert root["_resource"]["service.name"] == "research-agent"
    assert root["_resource"]["telemetry.sdk.language"] == "python"


def test_an_exception_leaving_the_block_is_recorded_and_sets_the_error_status(capture: Capture) -> None:
    configure_json(capture)
    with pytest.raises(TimeoutError), polytel.span("execute_tool fetch_page"):
        raise TimeoutError("timed out after 30s")
    (span,) = flush_spans(capture, 1)
    assert span["status"]["code"] == 2
    assert span["status"]["message"] == "TimeoutError: timed out after 30s"
    (event,) = span["events"]
    assert event["name"] == "exception"
    e = attrs(event["attributes"])
    assert e["exception.type"] == "TimeoutError"
    assert e["exception.message"] == "timed out after 30s"
    assert "test_api.py" in e["exception.stacktrace"] and "TimeoutError" in e["exception.stacktrace"]


def test_record_exception_explicitly(capture: Capture) -> None:
    configure_json(capture)
    with polytel.span("tool") as s:
        empty: Dict[str, int] = {}
        try:
            empty["missing"]
        except KeyError as err:
            s.record_exception(err)
        s.record_exception(type="RemoteError", message="from the tool server", stacktrace="at server.py:1")
    (span,) = flush_spans(capture, 1)
    first, second = (attrs(e["attributes"]) for e in span["events"])
    assert first["exception.type"] == "KeyError" and first["exception.message"] == "'missing'"
    assert second == {
        "exception.type": "RemoteError",
        "exception.message": "from the tool server",
        "exception.stacktrace": "at server.py:1",
    }
    assert "status" not in span or span["status"].get("code", 0) == 0, "recording is not failing"


def test_spans_started_without_with_and_explicit_parents(capture: Capture) -> None:
    configure_json(capture)
    root = polytel.span("root")
    child = polytel.span("child", parent=root)
    other = polytel.span("other root", parent=None)
    link = polytel.span("linked", links=[polytel.Link(child, {"reason": "retry"}), other.context])
    for s in (link, other, child, root):
        s.end()
    root.end()  # a second end does nothing
    spans = by_name(flush_spans(capture, 4))
    assert spans["child"]["parentSpanId"] == spans["root"]["spanId"]
    assert spans["other root"]["traceId"] != spans["root"]["traceId"]
    assert spans["linked"]["traceId"] not in (spans["root"]["traceId"], spans["other root"]["traceId"])
    first, second = spans["linked"]["links"]
    assert (first["traceId"], first["spanId"]) == (spans["child"]["traceId"], spans["child"]["spanId"])
    assert attrs(first["attributes"]) == {"reason": "retry"}
    assert second["spanId"] == spans["other root"]["spanId"]


def test_traced_decorates_sync_async_and_generator_functions(capture: Capture) -> None:
    configure_json(capture)

    @polytel.traced()
    def plain(x: int) -> int:
        current = polytel.current_span()
        assert current is not None and current.is_recording()
        return x * 2

    @polytel.traced("execute_tool search", attributes={"gen_ai.tool.name": "search"}, kind="internal")
    async def search(q: str) -> str:
        await asyncio.sleep(0)
        return q.upper()

    @polytel.traced
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            current = polytel.current_span()
            assert current is not None
            yield i

    @polytel.traced("stream")
    async def stream(n: int) -> Any:
        for i in range(n):
            yield i

    @polytel.traced("fails")
    def fails() -> None:
        raise ValueError("nope")

    with polytel.span("outer") as outer_span:
        assert plain(21) == 42
        assert asyncio.run(search("q")) == "Q"
        consumed = []
        for i in numbers(3):
            consumed.append(i)
            assert polytel.current_span() is outer_span, "the generator's span is current only inside it"
        assert consumed == [0, 1, 2]

        async def consume() -> List[int]:
            return [i async for i in stream(2)]

        assert asyncio.run(consume()) == [0, 1]
        with pytest.raises(ValueError):
            fails()
    assert plain.__name__ == "plain"

    spans = by_name(flush_spans(capture, 6))
    outer = spans["outer"]["spanId"]
    qualname = "test_traced_decorates_sync_async_and_generator_functions.<locals>."
    for name in (qualname + "plain", "execute_tool search", qualname + "numbers", "stream", "fails"):
        assert spans[name]["parentSpanId"] == outer, name
    assert attrs(spans["execute_tool search"]["attributes"]) == {"gen_ai.tool.name": "search"}
    assert spans["fails"]["status"]["code"] == 2
    assert "status" not in spans[qualname + "plain"]


def test_extract_and_inject_continue_a_trace(capture: Capture) -> None:
    configure_json(capture)
    incoming = {
        "TraceParent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "vendor=abc",
        "baggage": "user=al%20ice",
    }
    upstream = polytel.extract(incoming)
    assert upstream.span_context is not None and upstream.span_context.remote
    assert upstream.baggage == (("user", "al ice"),)
    with polytel.span("POST /agent", kind="server", parent=upstream) as server:
        headers: Dict[str, str] = {"accept": "application/json"}
        out = polytel.inject(headers)
        assert out is headers and headers["accept"] == "application/json"
        assert headers["traceparent"] == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{server.span_id}-01"
        assert headers["tracestate"] == "vendor=abc"
        assert headers["baggage"] == "user=al%20ice"
    assert polytel.extract({"other": "x"}).span_context is None
    assert polytel.inject() == {}, "no current span: nothing to carry"
    (span,) = flush_spans(capture, 1)
    assert span["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span["parentSpanId"] == "00f067aa0ba902b7"
    assert span["traceState"] == "vendor=abc"
    assert span["flags"] & 0x300 == 0x300, "the parent is remote"


def test_sampling_off_still_propagates(capture: Capture) -> None:
    configure_json(capture, sampler="always_off")
    with polytel.span("not sampled") as s:
        assert not s.is_recording()
        s.set_attribute("ignored", 1)
        assert polytel.inject()["traceparent"].endswith("-00")
    assert polytel.force_flush(10)
    assert capture.on("/v1/traces") == []


def test_before_configure_everything_is_a_quiet_no_op(capture: Capture) -> None:
    calls = polytel.counter("made.before.configure")
    with polytel.span("nothing") as s:
        assert not s.is_recording()
        calls.add(1)
        polytel.log("info", "dropped")
    assert polytel.inject() == {}
    assert (
        polytel.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}).span_context is None
    )
    assert polytel.force_flush() and polytel.stats() == {}
    # An instrument made before configure works once it is called.
    configure_json(capture)
    calls.add(2, {"k": "v"})
    assert polytel.force_flush(10)
    polytel.shutdown(10)
    metric = capture.metrics()["made.before.configure"]
    (point,) = metric["sum"]["dataPoints"]
    assert point["asDouble"] == 2 and attrs(point["attributes"]) == {"k": "v"}


def test_configure_alone_reads_the_environment(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", capture.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-the-environment")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=agents")
    polytel.configure()
    with polytel.span("s"):
        pass
    (span,) = flush_spans(capture, 1)
    resource = span["_resource"]
    assert resource["service.name"] == "from-the-environment" and resource["team"] == "agents"
    assert resource["process.runtime.name"] == "cpython"
    assert resource["process.pid"] == os.getpid()


def test_explicit_options_win_over_the_environment_which_wins_over_a_config_file(
    capture: Capture, tmp_path: Path
) -> None:
    config = tmp_path / "polytel.toml"
    config.write_text('service_name = "from-file"\nservice_version = "9.9"\n', encoding="utf-8")
    configure_json(
        capture,
        env={"POLYTEL_CONFIG": str(config), "OTEL_SERVICE_NAME": "from-env"},
        deployment_environment="staging",
    )
    with polytel.span("s"):
        pass
    resource = flush_spans(capture, 1)[0]["_resource"]
    assert resource["service.name"] == "from-env"
    assert resource["service.version"] == "9.9"
    assert resource["deployment.environment.name"] == "staging"


def test_a_bad_configuration_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(polytel.ConfigurationError, match=r"honeycomb_api_key.*HONEYCOMB_API_KEY"):
        polytel.configure(env={}, backend="honeycomb")
    with pytest.raises(polytel.ConfigurationError, match="no_such_option"):
        polytel.configure(env={}, no_such_option=1)
    with pytest.raises(polytel.ConfigurationError, match="could not be read"):
        polytel.configure(env={}, config_file=str(tmp_path / "missing.toml"))
    assert _state.pipeline is None


def test_presets_send_credentials_but_never_show_them(capture: Capture) -> None:
    key = "hcaik_01hq3n0example0key0secretvalue"
    configure_json(capture, backend="honeycomb", honeycomb_api_key=key, service_name="svc")
    described = str(polytel.describe())
    assert key not in described and "hcai" in described
    pipeline = _state.pipeline
    assert key not in repr(pipeline)
    with polytel.span("s"):
        pass
    assert polytel.force_flush(10)
    (request,) = capture.on("/v1/traces")
    assert request.headers["x-honeycomb-team"] == key


def test_retries_are_decided_by_the_core(capture: Capture) -> None:
    capture.answers.append((503, {"Retry-After": "0"}, b"busy"))
    configure_json(capture)
    with polytel.span("retried"):
        pass
    # The flush waits for the retry (Retry-After: 0, so at once) and its answer.
    assert polytel.force_flush(10)
    assert len(capture.requests) == 2
    names = [s["name"] for s in capture.spans()]
    assert names == ["retried", "retried"], "the same export, sent again after the 503"
    stats = polytel.stats()
    assert stats["spans"]["retried"] >= 1 and stats["spans"]["exported"] == 1


def test_a_rejected_export_is_dropped_and_counted(capture: Capture) -> None:
    capture.answers.append((400, {}, b'{"message":"bad"}'))
    configure_json(capture)
    with polytel.span("rejected"):
        pass
    assert polytel.force_flush(10)
    stats = polytel.stats()
    assert stats["spans"]["exported"] == 0
    assert sum(stats["spans"]["dropped"].values()) == 1, stats


def test_disabled_sends_nothing(capture: Capture) -> None:
    configure_json(capture, disabled=True)
    assert _state.pipeline is not None and _state.pipeline._worker is None, "no export worker when disabled"
    with polytel.span("s") as s:
        assert not s.is_recording()
    polytel.counter("c").add(1)
    polytel.log("info", "x")
    assert polytel.shutdown(5).flushed
    assert capture.requests == []


def test_console_backend_writes_spans_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    polytel.configure(env={}, backend="console", service_name="console-test")
    with polytel.span("visible on the console"):
        polytel.log("warn", "a console log line")
    assert polytel.shutdown(5).flushed
    out = capsys.readouterr().out
    assert "visible on the console" in out
    assert "a console log line" in out


def test_shutdown_is_idempotent_and_stops_recording(capture: Capture) -> None:
    configure_json(capture)
    with polytel.span("before"):
        pass
    report = polytel.shutdown(10)
    assert report.flushed and report.abandoned == 0 and bool(report)
    assert polytel.shutdown(1) == polytel.ShutdownReport(0, True)
    with polytel.span("after") as s:
        assert not s.is_recording()
    assert [s["name"] for s in capture.spans()] == ["before"]


# -- metrics -----------------------------------------------------------------------


def test_instruments_aggregate_in_the_core(capture: Capture) -> None:
    configure_json(capture)
    calls = polytel.counter("agent.tool.calls", unit="{call}", description="Tool calls.")
    active = polytel.up_down_counter("agent.sessions.active", unit="{session}")
    duration = polytel.histogram("gen_ai.client.operation.duration", unit="s", boundaries=[0.1, 1, 10])
    queue = polytel.gauge("agent.queue.length")
    memory = polytel.observable_gauge("agent.memory.entries", lambda: [(42, {"store": "notes"})])
    tokens = polytel.observable_counter("agent.tokens", lambda: polytel.Observation(1000, {"kind": "input"}))
    calls.add(1, {"gen_ai.tool.name": "search"})
    calls.add(2, {"gen_ai.tool.name": "search"})
    active.add(1)
    active.add(-1)
    active.add(1)
    with polytel.span("chat") as s:
        duration.record(0.73, {"gen_ai.request.model": "gpt-4o"})
    duration.record(2.5, {"gen_ai.request.model": "gpt-4o"})
    queue.record(4)
    queue.record(2.5)
    assert polytel.shutdown(10).flushed
    m = capture.metrics()
    assert m["agent.tool.calls"]["unit"] == "{call}" and m["agent.tool.calls"]["description"] == "Tool calls."
    (point,) = m["agent.tool.calls"]["sum"]["dataPoints"]
    assert point["asDouble"] == 3 and m["agent.tool.calls"]["sum"]["isMonotonic"]
    assert m["agent.sessions.active"]["sum"]["dataPoints"][0]["asDouble"] == 1
    (h,) = m["gen_ai.client.operation.duration"]["histogram"]["dataPoints"]
    assert int(h["count"]) == 2 and h["sum"] == pytest.approx(3.23)
    assert h["explicitBounds"] == [0.1, 1, 10] and [int(c) for c in h["bucketCounts"]] == [0, 1, 1, 0]
    (exemplar,) = h["exemplars"]
    assert exemplar["spanId"] == s.span_id and exemplar["traceId"] == s.trace_id
    assert m["agent.queue.length"]["gauge"]["dataPoints"][0]["asDouble"] == 2.5
    (observed,) = m["agent.memory.entries"]["gauge"]["dataPoints"]
    assert observed["asDouble"] == 42 and attrs(observed["attributes"]) == {"store": "notes"}
    assert m["agent.tokens"]["sum"]["dataPoints"][0]["asDouble"] == 1000
    memory.unregister()
    tokens.unregister()


def test_bad_measurements_are_dropped_and_counted_not_raised(capture: Capture) -> None:
    configure_json(capture)
    c = polytel.counter("c")
    c.add(-1)
    c.add(math.inf)
    c.add("not a number")  # type: ignore[arg-type]
    c.add(1)
    assert polytel.force_flush(10)
    stats = polytel.stats()
    assert sum(stats["metrics"]["dropped"].values()) == 3, stats


# -- logs ------------------------------------------------------------------------------


def test_log_with_attributes_event_name_and_trace_correlation(capture: Capture) -> None:
    configure_json(capture)
    polytel.log("info", "outside any span", attempt=1)
    with polytel.span("agent") as s:
        polytel.log("error", "fetch_page timed out", {"error.type": "TimeoutError"}, retry=False)
        polytel.log(logging.WARNING, "a logging level works too")
        polytel.log("debug", {"structured": True}, event_name="agent.cache")
    assert polytel.force_flush(10)
    first, second, third, fourth = capture.logs()
    assert first["body"]["stringValue"] == "outside any span" and first["severityNumber"] == 9
    assert attrs(first["attributes"]) == {"attempt": 1}
    assert not first.get("traceId")
    assert second["severityNumber"] == 17 and second["severityText"] == "ERROR"
    assert attrs(second["attributes"]) == {"error.type": "TimeoutError", "retry": False}
    assert second["traceId"] == s.trace_id and second["spanId"] == s.span_id
    assert third["severityNumber"] == 13 and third["severityText"] == "WARNING"
    assert fourth["eventName"] == "agent.cache"
    assert fourth["body"] == {"kvlistValue": {"values": [{"key": "structured", "value": {"boolValue": True}}]}}


def test_logging_handler_turns_records_into_log_records(capture: Capture) -> None:
    configure_json(capture)
    logger = logging.getLogger("agent.tools")
    logger.setLevel(logging.DEBUG)
    handler = polytel.LoggingHandler()
    logger.addHandler(handler)
    try:
        with polytel.span("tool") as s:
            logger.info("fetched %d pages", 3, extra={"gen_ai.tool.name": "fetch_page", "url": "https://x"})
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logger.exception("tool failed")
        logger.debug("no span here")
        logging.getLogger("polytel").warning("polytel's own warnings are not fed back")
    finally:
        logger.removeHandler(handler)
    assert polytel.force_flush(10)
    info, error, debug = capture.logs()
    assert info["body"]["stringValue"] == "fetched 3 pages"
    assert info["severityNumber"] == 9 and info["severityText"] == "INFO"
    assert info["_scope"]["name"] == "agent.tools"
    a = attrs(info["attributes"])
    assert a["gen_ai.tool.name"] == "fetch_page" and a["url"] == "https://x"
    assert a["code.function.name"] == "test_logging_handler_turns_records_into_log_records"
    assert a["code.file.path"].endswith("test_api.py") and isinstance(a["code.line.number"], int)
    assert info["traceId"] == s.trace_id and info["spanId"] == s.span_id
    e = attrs(error["attributes"])
    assert error["severityNumber"] == 17
    assert e["exception.type"] == "RuntimeError" and e["exception.message"] == "boom"
    assert "raise RuntimeError" in e["exception.stacktrace"]
    assert debug["severityNumber"] == 5 and not debug.get("traceId")


# -- stats ---------------------------------------------------------------------------


def test_stats_count_what_happened(capture: Capture) -> None:
    configure_json(capture)
    for i in range(5):
        with polytel.span(f"s{i}"):
            pass
    assert polytel.force_flush(10)
    stats = polytel.stats()
    assert stats["spans"]["received"] == 5 and stats["spans"]["exported"] == 5
    assert stats["host"] == {
        "buffered": 0,
        "buffer_dropped": {"spans": 0, "metrics": 0, "logs": 0},
        "lost_to_traps": 0,
    }
