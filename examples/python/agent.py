"""An agent-style app instrumented with polytel's GenAI operation kit: an
agent plans with an LLM, calls tools (one of them flaky), writes its memory,
and logs through the standard library.
The core turns each operation into a span named and attributed by the GenAI
semantic conventions, token usage and durations into metrics, prices the
tokens, and summarises every operation in ``polytel.stats()["operations"]``;
logs carry the trace they belong to.

    python examples/python/agent.py                          # to the console
    python examples/python/agent.py --endpoint http://127.0.0.1:4318   # to a collector (OTLP/HTTP)
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python examples/python/agent.py

The LLM and the tools are simulated, so it runs anywhere without keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
from typing import Dict, List

import polytel

MEMORY: Dict[str, str] = {}
# Instruments can be made at import time, before configure.
polytel.observable_gauge("agent.memory.entries", lambda: len(MEMORY), unit="{entry}")

log = logging.getLogger("agent")
rng = random.Random(7)


async def chat(model: str, prompt: str) -> str:
    """One LLM call: the kit records the model, the usage and the duration."""
    with polytel.llm_call("openai", model, attributes={"server.address": "api.openai.com"}) as call:
        call.record_input(prompt)  # kept only when content capture is on
        await asyncio.sleep(rng.uniform(0.005, 0.03))
        answer = f"plan for: {prompt}"
        call.record_usage(input_tokens=len(prompt.split()) * 4, output_tokens=rng.randint(20, 200))
        call.set_response_model(f"{model}-2024-08-06")
        call.record_output(answer)
        return answer


@polytel.tool("search")
async def search(query: str) -> List[str]:
    await asyncio.sleep(rng.uniform(0.002, 0.01))
    return [f"https://example.com/{query.replace(' ', '-')}/{i}" for i in range(3)]


@polytel.tool("fetch_page")
async def fetch_page(url: str) -> str:
    await asyncio.sleep(rng.uniform(0.002, 0.01))
    if rng.random() < 0.3:
        raise TimeoutError(f"{url} timed out after 30s")  # recorded: error status, error.type
    return f"contents of {url}"


def remember(key: str, value: str) -> None:
    with polytel.memory("update_memory", "agent-notes") as m:
        m.record_input({key: value})
        MEMORY[key] = value


async def run_agent(task: str) -> str:
    with polytel.agent("research", attributes={"agent.task": task}) as agent:
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
    # Per operation: count, errors by type, p50/p95/p99 latency, tokens, cost.
    for op in polytel.stats().get("operations", []):
        print(json.dumps(op, sort_keys=True))
    report = polytel.shutdown(timeout=10)
    if not report:
        print(f"polytel: {report.abandoned} items could not be delivered")
