"""How long the edge example (examples/edge under `wasmtime serve`) takes to
answer, one request after another: with telemetry off, sending to
`polytel receive`, and with a receiver that accepts connections and never
answers. The component flushes after its response is complete, so the last
two should match. There is no official OpenTelemetry SDK for wasi:http
components to run beside it.

    python3 bench/edge/latency.py [--requests N]

It runs scripts/install-wasmtime.sh and scripts/build-edge.sh first (no-ops
once built).
"""

import argparse
import http.server
import os
import re
import socket
import statistics
import subprocess
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("POLYTEL_CACHE", os.path.expanduser("~/.cache/polytel"))
POLYTEL = os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target")),
    "release",
    "polytel",
)


def script_output(script: str) -> str:
    """The path a setup script prints as its last line."""
    out = subprocess.run(
        ["bash", os.path.join(REPO, script)], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


# Room for every instance that lingers while its flush waits on a hanging receiver.
LIMITS = [
    f"-Opooling-total-{what}=20000"
    for what in ("component-instances", "core-instances", "memories", "tables")
]


class Tool(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"sunny")

    def log_message(self, *args: object) -> None:
        pass


def announced(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    found = re.search(r"http://[0-9.:]+", process.stderr.readline())
    assert found, "no URL announced"
    # Keep draining stderr so the process never blocks on it.
    threading.Thread(
        target=lambda: [None for _ in process.stderr or []], daemon=True
    ).start()
    return found.group(0)


def latencies(
    wasmtime: str, app: str, requests: int, env: dict[str, str]
) -> list[float]:
    args = [wasmtime, "serve", "--addr", "127.0.0.1:0", "-Scli", *LIMITS]
    for k, v in env.items():
        args += ["--env", f"{k}={v}"]
    serve = subprocess.Popen(
        [*args, app], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        url = announced(serve) + "/agent?q=weather"
        urllib.request.urlopen(url).read()  # the first instance warms caches
        took = []
        for _ in range(requests):
            started = time.perf_counter()
            urllib.request.urlopen(url).read()
            took.append((time.perf_counter() - started) * 1000)
        return sorted(took)
    finally:
        serve.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    n = parser.parse_args().requests
    wasmtime = script_output("scripts/install-wasmtime.sh")
    app = script_output("scripts/build-edge.sh")
    tool = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tool)
    threading.Thread(target=tool.serve_forever, daemon=True).start()
    receive = subprocess.Popen(
        [POLYTEL, "receive", "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(4096)
    held = []
    threading.Thread(
        target=lambda: [held.append(hanging.accept()) for _ in iter(int, 1)],
        daemon=True,
    ).start()
    base = {"AGENT_TOOL_URL": f"http://127.0.0.1:{tool.server_address[1]}/tool"}
    runs = {
        "telemetry off": {**base, "OTEL_SDK_DISABLED": "true"},
        "to polytel receive": {
            **base,
            "OTEL_EXPORTER_OTLP_ENDPOINT": announced(receive),
        },
        "receiver hanging": {
            **base,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hanging.getsockname()[1]}",
        },
    }
    p50 = {}
    print(f"{n} requests each, one after another; answer latency in ms")
    for label, env in runs.items():
        took = latencies(wasmtime, app, n, env)
        p50[label] = statistics.median(took)
        print(
            f"  {label:20s} p50 {p50[label]:6.3f}  p99 {took[int(len(took) * 0.99) - 1]:6.3f}  max {took[-1]:6.3f}"
        )
    print(
        f"ratios of p50: on/off {p50['to polytel receive'] / p50['telemetry off']:.2f}, "
        f"hanging/healthy {p50['receiver hanging'] / p50['to polytel receive']:.2f}"
    )
    receive.kill()


if __name__ == "__main__":
    main()
