"""The GenAI operation kit: what the binding writes into each operation's
record (the "genai" member of ``record-spans``), and what comes out of the
core for it (exported spans, ``stats()["operations"]``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any, Dict, Iterator, List

import pytest

import polytel
from polytel import _pipeline

from .conftest import Capture, configure_json


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[Dict[str, Any]]]:
    """Every span record the binding hands to its buffer, as written."""
    seen: List[Dict[str, Any]] = []
    enqueue = _pipeline.Pipeline.enqueue_span

    def spy(self: _pipeline.Pipeline, record: Dict[str, Any]) -> None:
        seen.append(record)
        enqueue(self, record)

    monkeypatch.setattr(_pipeline.Pipeline, "enqueue_span", spy)
    yield seen


def genai(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r["genai"] for r in records if "genai" in r]


def operations() -> List[Dict[str, Any]]:
    ops: List[Dict[str, Any]] = polytel.stats()["operations"]
    return ops


def summary(name: str) -> Dict[str, Any]:
    found = [o for o in operations() if o["name"] == name]
    assert len(found) == 1, operations()
    return found[0]


# -- the record ---------------------------------------------------------------------


def test_an_llm_call_writes_its_fields_and_leaves_naming_to_the_core(
    capture: Capture, records: List[Dict[str, Any]]
) -> None:
    configure_json(capture)
    with polytel.llm_call("openai", "gpt-4o", attributes={"server.address": "api.openai.com"}) as call:
        assert isinstance(call, polytel.Operation)
        assert polytel.current_span() is call and polytel.current_operation() is call
        call.record_usage(input_tokens=400, cache_read_tokens=128)
        call.record_usage(input_tokens=12, output_tokens=96)
        call.set_response_model("gpt-4o-2024-08-06")
        call.record_cost(0.5)
        call.record_cost(0.00123)
        call.set_attribute("gen_ai.request.temperature", 0.2)
    assert polytel.current_span() is None
    [rec] = records
    assert rec["name"] == "" and rec["kind"] == 0
    assert rec["attributes"] == {"server.address": "api.openai.com", "gen_ai.request.temperature": 0.2}
    assert "sampled" not in rec
    assert rec["genai"] == {
        "operation": "chat",
        "name": "gpt-4o",
        "provider": "openai",
        "response_model": "gpt-4o-2024-08-06",
        "usage": {"input_tokens": 412, "output_tokens": 96, "cache_read_tokens": 128},
        "cost": 0.00123,
    }
    # The members in the order the core documents them.
    assert list(rec["genai"]) == ["operation", "name", "provider", "response_model", "usage", "cost"]
    assert list(rec["genai"]["usage"]) == ["input_tokens", "output_tokens", "cache_read_tokens"]


def test_each_operation_kind_and_a_name_or_kind_the_user_chose(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture)
    with polytel.llm_call("openai", "text-embedding-3-small", operation="embeddings"):
        pass
    with polytel.workflow("research"):
        pass
    with polytel.tool("web_search", kind="client") as t:
        t.update_name("search the web")
    with polytel.memory("search_memory", "user-preferences"):
        pass
    with polytel.agent("planner"):
        pass
    got = [(g["operation"], g["name"], g.get("provider")) for g in genai(records)]
    assert got == [
        ("embeddings", "text-embedding-3-small", "openai"),
        ("invoke_workflow", "research", None),
        ("execute_tool", "web_search", None),
        ("search_memory", "user-preferences", None),
        ("invoke_agent", "planner", None),
    ]
    assert [(r["name"], r["kind"]) for r in records] == [("", 0), ("", 0), ("search the web", 3), ("", 0), ("", 0)]
    # Nothing but what was given: no usage, cost, agent or content members.
    assert all(set(g) <= {"operation", "name", "provider"} for g in genai(records))


def test_operations_inside_an_agent_carry_its_name_through_the_context(
    capture: Capture, records: List[Dict[str, Any]]
) -> None:
    configure_json(capture)

    @polytel.tool("search")
    async def search() -> str:
        with polytel.llm_call("openai", "gpt-4o-mini"):
            return "found"

    async def run() -> None:
        with polytel.agent("research-assistant"):
            with polytel.span("plain step"), polytel.llm_call("openai", "gpt-4o"):
                pass
            await asyncio.gather(search(), search())
            with polytel.agent("sub-agent"), polytel.memory("search_memory", "notes"):
                pass

            # A thread that copies the context runs in the agent too.
            def in_thread() -> None:
                with polytel.workflow("wf"):
                    pass

            t = threading.Thread(target=contextvars.copy_context().run, args=(in_thread,))
            t.start()
            t.join()
        with polytel.llm_call("openai", "outside"):
            pass

    asyncio.run(run())
    agents = {(g["operation"], g["name"]): g.get("agent") for g in genai(records)}
    assert agents == {
        ("chat", "gpt-4o"): "research-assistant",
        ("execute_tool", "search"): "research-assistant",
        ("chat", "gpt-4o-mini"): "research-assistant",
        ("search_memory", "notes"): "sub-agent",
        ("invoke_agent", "sub-agent"): "research-assistant",
        ("invoke_workflow", "wf"): "research-assistant",
        ("invoke_agent", "research-assistant"): None,
        ("chat", "outside"): None,
    }
    assert len(genai(records)) == 10  # the tool and its call twice


def test_an_explicit_parent_operation_gives_its_agent(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture)
    agent = polytel.agent("triage", parent=None).start()
    tool = polytel.tool("route", parent=agent).start()
    llm = polytel.llm_call("acme", "house-model", parent=tool).start()
    plain = polytel.span("not an operation", parent=agent)
    beside = polytel.tool("beside", parent=plain).start()
    for s in (beside, plain, llm, tool, agent):
        s.end()
    assert [g.get("agent") for g in genai(records)] == [None, "triage", "triage", None]
    by_id = {r["span_id"]: r for r in records}
    assert by_id[llm.span_id]["parent_span_id"] == tool.span_id
    assert by_id[tool.span_id]["parent_span_id"] == agent.span_id


def test_decorators_make_one_operation_per_call_sync_and_async(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture)

    @polytel.tool("search")
    def search(q: str) -> str:
        op = polytel.current_operation()
        assert op is not None
        op.record_usage(input_tokens=1)
        return q.upper()

    @polytel.llm_call("openai", "gpt-4o")
    async def chat(prompt: str) -> str:
        await asyncio.sleep(0)
        return prompt[::-1]

    assert search.__name__ == "search" and chat.__name__ == "chat"
    assert [search("a"), search("b"), search("c")] == ["A", "B", "C"]

    async def both() -> List[str]:
        return list(await asyncio.gather(chat("ab"), chat("cd")))

    assert asyncio.run(both()) == ["ba", "dc"]
    got = [(g["operation"], g["name"]) for g in genai(records)]
    assert got == [("execute_tool", "search")] * 3 + [("chat", "gpt-4o")] * 2
    assert len({r["span_id"] for r in records}) == 5
    # Each call its own trace (no current span around them).
    assert len({r["trace_id"] for r in records}) == 5


def test_capture_is_off_by_default_and_then_values_are_not_even_read(
    capture: Capture, records: List[Dict[str, Any]]
) -> None:
    configure_json(capture)
    read: List[str] = []

    class Prompt:
        def __str__(self) -> str:
            read.append("str")
            return "secret prompt"

    with polytel.llm_call("openai", "gpt-4o") as call:
        call.record_input(Prompt())
        call.record_output({"role": "assistant", "content": Prompt()})
    assert read == []
    [g] = genai(records)
    assert "input" not in g and "output" not in g


def test_an_exception_leaving_an_operation_sets_the_error_status(
    capture: Capture, records: List[Dict[str, Any]]
) -> None:
    configure_json(capture)
    with pytest.raises(TimeoutError), polytel.tool("fetch_page"):
        raise TimeoutError("timed out after 30s")

    @polytel.tool("flaky")
    async def flaky() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        asyncio.run(flaky())
    for rec, ty in zip(records, ("TimeoutError", "ValueError")):
        assert rec["status"]["code"] == 2
        [event] = rec["events"]
        assert event["exception"]["type"] == ty and event["exception"]["escaped"] is True
        # error.type is the core's to derive.
        assert "attributes" not in rec


def test_not_configured_or_disabled_operations_are_quiet_no_ops(capture: Capture) -> None:
    with polytel.llm_call("openai", "gpt-4o") as call:
        call.record_usage(input_tokens=1)
        call.record_cost(1.0)
        call.record_input("x")
        call.set_response_model("m")
        assert not call.is_recording()
    configure_json(capture, disabled=True)
    with polytel.agent("a") as a, polytel.tool("t") as t:
        t.record_usage(output_tokens=2)
        assert not a.is_recording() and not t.is_recording()
    assert polytel.shutdown().flushed
    assert capture.requests == []


def test_a_shared_spec_ends_the_operation_each_block_started(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture)
    spec = polytel.tool("search")
    with spec as outer:
        with spec as inner:
            assert polytel.current_span() is inner
        assert polytel.current_span() is outer and outer.is_recording() and not inner.is_recording()
    assert [r["span_id"] for r in records] == [inner.span_id, outer.span_id]
    assert records[0]["parent_span_id"] == outer.span_id


# -- through the core ------------------------------------------------------------------


def test_operations_are_named_by_the_core_and_summarised_in_stats(capture: Capture) -> None:
    configure_json(capture, service_name="genai-test")
    for i in range(4):
        with polytel.llm_call("openai", "gpt-4o") as call:
            call.record_usage(input_tokens=100, output_tokens=10 * (i + 1))
    for _ in range(2):
        with pytest.raises(TimeoutError), polytel.tool("fetch_page"):
            raise TimeoutError("slow")
    with polytel.tool("fetch_page"):
        pass
    # No flush: stats() hands what ended to the core first.
    llm, tool = summary("gpt-4o"), summary("fetch_page")
    assert (llm["operation"], llm["provider"], llm["count"], llm["errors"]) == ("chat", "openai", 4, 0)
    assert llm["input_tokens"] == 400 and llm["output_tokens"] == 100
    assert (tool["operation"], tool["count"], tool["errors"]) == ("execute_tool", 3, 2)
    assert tool["error_types"] == {"TimeoutError": 2}
    for entry in (llm, tool):
        d = entry["duration_s"]
        assert 0 <= d["p50"] <= d["p95"] <= d["p99"]
    assert polytel.force_flush(timeout=10)
    names = sorted(s["name"] for s in capture.spans())
    assert names == ["chat gpt-4o"] * 4 + ["execute_tool fetch_page"] * 3


def test_an_unsampled_operation_is_still_sent_and_counted_but_not_exported(
    capture: Capture, records: List[Dict[str, Any]]
) -> None:
    configure_json(capture, sampler="always_off")
    with polytel.agent("triage") as a:
        assert not a.sampled and a.is_recording()
        with polytel.llm_call("acme", "house-model") as call:
            call.record_usage(input_tokens=200, output_tokens=20)
        with polytel.span("plain, unsampled"):
            pass
    assert [r["sampled"] for r in records] == [False, False]
    assert records[0]["genai"]["agent"] == "triage"
    assert summary("house-model")["count"] == 1 and summary("triage")["count"] == 1
    assert polytel.force_flush(timeout=10)
    assert capture.spans() == []
    assert polytel.stats()["spans"]["dropped"] == {}


def test_traces_going_nowhere_still_count_operations(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture, traces_exporter="none")
    with polytel.workflow("nightly"):
        pass
    assert records[0]["sampled"] is False
    assert summary("nightly")["count"] == 1
    assert polytel.force_flush(timeout=10)
    assert capture.on("/v1/traces") == []


def test_captured_content_when_opted_in(capture: Capture, records: List[Dict[str, Any]]) -> None:
    configure_json(capture, genai_capture_content=True)
    with polytel.tool("search") as t:
        t.record_input({"q": "wasm", "limit": 3})
        t.record_output(["a", "b"])
    assert records[0]["genai"]["input"] == {"map": {"q": "wasm", "limit": 3}}
    assert records[0]["genai"]["output"] == ["a", "b"]
    assert polytel.force_flush(timeout=10)
    assert len(capture.spans()) == 1
