"""An agent-style app instrumented with polytel: an agent plans with an LLM,
calls tools (one of them flaky), keeps a memory, and logs through the standard
library. Every LLM call and tool call is a span; token usage, durations and
tool outcomes are metrics; logs carry the trace they belong to.

    python examples/python/agent.py                          # to the console
    python examples/python/agent.py --endpoint http://127.0.0.1:4318   # to a collector (OTLP/HTTP)
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python examples/python/agent.py

The LLM and the tools are simulated, so it runs anywhere without keys.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
from typing import Dict, List

import polytel

# Instruments can be made at import time, before configure.
TOOL_CALLS = polytel.counter("agent.tool.calls", unit="{call}", description="Tool calls by tool and outcome.")
TOKENS = polytel.histogram(
    "gen_ai.client.token.usage",
    unit="{token}",
    description="Tokens used per LLM call.",
    boundaries=[1, 4, 16, 64, 256, 1024, 4096, 16384, 65536],
)
DURATION = polytel.histogram(
    "gen_ai.client.operation.duration",
    unit="s",
    description="GenAI operation duration.",
    boundaries=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
)
MEMORY: Dict[str, str] = {}
polytel.observable_gauge("agent.memory.entries", lambda: len(MEMORY), unit="{entry}")

log = logging.getLogger("agent")
rng = random.Random(7)


async def chat(model: str, prompt: str) -> str:
    """One LLM call, as the GenAI semantic conventions describe it."""
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.system": "openai"}
    with polytel.span(f"chat {model}", attributes, kind="client") as s:
        latency = rng.uniform(0.005, 0.03)
        await asyncio.sleep(latency)
        input_tokens, output_tokens = len(prompt.split()) * 4, rng.randint(20, 200)
        s.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        s.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        s.set_attribute("gen_ai.response.finish_reasons", ["stop"])
        TOKENS.record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
        TOKENS.record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
        DURATION.record(latency, attributes)
        return f"plan for: {prompt}"


@polytel.traced("execute_tool search", attributes={"gen_ai.tool.name": "search"})
async def search(query: str) -> List[str]:
    await asyncio.sleep(rng.uniform(0.002, 0.01))
    TOOL_CALLS.add(1, {"gen_ai.tool.name": "search", "outcome": "ok"})
    return [f"https://example.com/{query.replace(' ', '-')}/{i}" for i in range(3)]


@polytel.traced("execute_tool fetch_page", attributes={"gen_ai.tool.name": "fetch_page"})
async def fetch_page(url: str) -> str:
    await asyncio.sleep(rng.uniform(0.002, 0.01))
    if rng.random() < 0.3:
        TOOL_CALLS.add(1, {"gen_ai.tool.name": "fetch_page", "outcome": "error"})
        raise TimeoutError(f"{url} timed out after 30s")
    TOOL_CALLS.add(1, {"gen_ai.tool.name": "fetch_page", "outcome": "ok"})
    return f"contents of {url}"


def remember(key: str, value: str) -> None:
    with polytel.span("memory store", {"agent.memory.key": key}):
        MEMORY[key] = value


async def run_agent(task: str) -> str:
    with polytel.span("invoke_agent research", {"gen_ai.agent.name": "research", "agent.task": task}) as agent:
        log.info("agent started on %r", task)
        plan = await chat("gpt-4o", f"plan how to research {task}")
        pages = await search(task)
        fetched = await asyncio.gather(*(fetch_page(u) for u in pages), return_exceptions=True)
        failures = [f for f in fetched if isinstance(f, BaseException)]
        for failure in failures:
            log.warning("a tool failed: %s", failure, extra={"gen_ai.tool.name": "fetch_page"})
        remember(task, plan)
        answer = await chat("gpt-4o-mini", f"summarise {len(fetched) - len(failures)} pages about {task}")
        agent.set_attribute("agent.tool_failures", len(failures))
        polytel.log("info", "agent finished", event_name="agent.finished", task=task)
        return answer


async def main(tasks: List[str]) -> None:
    await asyncio.gather(*(run_agent(t) for t in tasks))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="an OTLP/HTTP receiver's base URL, such as a collector's")
    parser.add_argument("--runs", type=int, default=2, help="how many agent runs (concurrently)")
    args = parser.parse_args()

    if args.endpoint:
        polytel.configure(backend="otlp", endpoint=args.endpoint, service_name="research-agent")
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("POLYTEL_BACKEND"):
        polytel.configure(service_name="research-agent")  # everything else from the environment
    else:
        polytel.configure(backend="console", service_name="research-agent")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(polytel.LoggingHandler())

    asyncio.run(main([f"topic {i}" for i in range(args.runs)]))
    report = polytel.shutdown(timeout=10)
    if not report:
        print(f"polytel: {report.abandoned} items could not be delivered")
