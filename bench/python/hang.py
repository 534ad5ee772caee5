"""The application's calls never wait on the network: per-call latency of
polytel's Python API with the receiver healthy and with it hanging, in the
same run, on the same machine. Read the ratios, not the absolute numbers.

    python bench/python/hang.py [--rounds 3] [--calls 20000]

The receiver is `polytel fault-receiver` (the polytel command: POLYTEL_BIN,
else $CARGO_TARGET_DIR/release/polytel, else ~/.cache/polytel/target/release/
polytel, else `polytel` on PATH), answering every request at once (healthy) or
reading it and never answering (script {"then": {"hang": true}}). Each round
configures a fresh pipeline for each condition (healthy first, then hanging),
warms it up, and, for the hanging one, waits until the export worker is
inside a hung request. Then it times every single call of

- span: start and end a span with 2 attributes (a context manager),
- metric: record a histogram value with 2 attributes,
- log: emit a log record with 2 attributes,

``--calls`` of each, one operation after the other, in bursts of
``--burst`` calls with a ``--pause-ms`` pause after each (not measured; an
application does other work between calls, and a healthy pipeline keeps up
with it), and prints per operation and
condition the median and p99 over all rounds' calls, and the ratio
hanging / healthy. With the receiver hanging, the queues fill and later
records are dropped (and counted): the counts are printed too, since a drop
is part of what a call costs then.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import polytel

OPS = ("span", "metric", "log")
CONDITIONS = ("healthy", "hanging")
ATTRS = {"route": "/chat", "status": "ok"}


def polytel_binary() -> str:
    env = os.environ.get("POLYTEL_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.environ.get("POLYTEL_CACHE") or os.path.expanduser("~/.cache/polytel"), "target"
    )
    built = Path(target) / "release" / "polytel"
    if built.is_file():
        return str(built)
    found = shutil.which("polytel")
    if found:
        return found
    sys.exit("hang.py: the polytel command is not built; run `cargo build --release --locked -p polytel`")


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [polytel_binary(), "fault-receiver", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            sys.exit(f"hang.py: polytel fault-receiver printed {self.url!r}")

    def script(self, script: Dict[str, Any]) -> None:
        body = json.dumps(script).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/script", data=body, method="PUT"), timeout=5):
            pass

    def stats(self) -> Dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as r:
            got: Dict[str, Any] = json.load(r)
        return got

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def timed(n: int, call: Callable[[int], None], burst: int = 0, pause: float = 0.0) -> List[int]:
    """Nanoseconds of each of ``n`` calls; after every ``burst`` calls, a
    ``pause`` (seconds, not measured), as an application does other work."""
    out = [0] * n
    clock = time.perf_counter_ns
    for i in range(n):
        t = clock()
        call(i)
        out[i] = clock() - t
        if burst and (i + 1) % burst == 0:
            time.sleep(pause)
    return out


def phase(
    receiver: Receiver, hanging: bool, calls: int, burst: int, pause: float
) -> Tuple[Dict[str, List[int]], Dict[str, Any]]:
    receiver.script({"then": {"hang": True}} if hanging else {"then": {"ok": True}})
    hung_before = receiver.stats()["answered"].get("hang", 0)
    polytel.configure(env={}, backend="otlp", endpoint=receiver.url, service_name="hang-bench")
    histogram = polytel.histogram("bench.duration", unit="s")

    def span(i: int) -> None:
        with polytel.span("handle request", ATTRS):
            pass

    def metric(i: int) -> None:
        histogram.record(0.25, ATTRS)

    def log(i: int) -> None:
        polytel.log("info", "request handled", ATTRS)

    ops: Dict[str, Callable[[int], None]] = {"span": span, "metric": metric, "log": log}
    # Warm-up; it also fills a batch, so a hanging receiver has a request to hang.
    for f in ops.values():
        timed(2000, f)
    polytel.force_flush(0.5)
    if hanging:
        deadline = time.monotonic() + 10
        while receiver.stats()["answered"].get("hang", 0) <= hung_before:
            if time.monotonic() > deadline:
                sys.exit("hang.py: the receiver never got a request to hang")
            time.sleep(0.01)
    samples: Dict[str, List[int]] = {}
    for name, f in ops.items():
        gc.collect()
        samples[name] = timed(calls, f, burst, pause)
    stats = polytel.stats()
    # A hung export is abandoned at once; its worker ends when the request times out.
    polytel.shutdown(timeout=0.2 if hanging else 5.0)
    return samples, stats


def percentile(values: List[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def dropped(stats: Dict[str, Any]) -> Dict[str, int]:
    host = stats["host"]["buffer_dropped"]
    return {signal: sum(stats[signal]["dropped"].values()) + host[signal] for signal in ("spans", "metrics", "logs")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000, help="calls of each operation per round and condition")
    parser.add_argument("--burst", type=int, default=50, help="calls between pauses (0: no pauses)")
    parser.add_argument("--pause-ms", type=float, default=1.0, help="pause after each burst, not measured")
    args = parser.parse_args()

    receiver = Receiver()
    pooled: Dict[str, Dict[str, List[int]]] = {c: {op: [] for op in OPS} for c in CONDITIONS}
    drops: Dict[str, List[Dict[str, int]]] = {c: [] for c in CONDITIONS}
    try:
        for r in range(args.rounds):
            for condition in CONDITIONS:
                samples, stats = phase(receiver, condition == "hanging", args.calls, args.burst, args.pause_ms / 1e3)
                for op in OPS:
                    pooled[condition][op].extend(samples[op])
                drops[condition].append(dropped(stats))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        polytel.shutdown(timeout=0.2)
        receiver.close()

    print(
        f"polytel {polytel.__version__}, Python {sys.version.split()[0]}, "
        f"{args.rounds} rounds x {args.calls} calls per operation and condition, "
        + (f"{args.burst} calls between {args.pause_ms} ms pauses" if args.burst else "no pauses")
        + "; microseconds per call"
    )
    print()
    print("| operation | healthy p50 | healthy p99 | hanging p50 | hanging p99 | ratio p50 | ratio p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for op in OPS:
        h, d = pooled["healthy"][op], pooled["hanging"][op]
        hp50, hp99 = statistics.median(h) / 1e3, percentile(h, 0.99) / 1e3
        dp50, dp99 = statistics.median(d) / 1e3, percentile(d, 0.99) / 1e3
        print(f"| {op} | {hp50:.2f} | {hp99:.2f} | {dp50:.2f} | {dp99:.2f} | {dp50 / hp50:.2f} | {dp99 / hp99:.2f} |")
    print()
    for condition in CONDITIONS:
        per_round = "; ".join(", ".join(f"{k} {v}" for k, v in d.items()) for d in drops[condition])
        print(f"dropped per round ({condition}): {per_round}")


if __name__ == "__main__":
    main()
