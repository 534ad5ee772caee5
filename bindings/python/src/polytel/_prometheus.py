"""Serves GET /metrics for Prometheus when the core's plan asks for it: each
scrape runs the observable callbacks, ships buffered measurements and asks the
core for the text."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Tuple

from ._core import ConfigurationError

if TYPE_CHECKING:
    from ._pipeline import Pipeline


def _split(listen: str) -> Tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigurationError(
            f"cannot serve Prometheus metrics on {listen!r}: not host:port; set another with "
            "prometheus_listen or OTEL_EXPORTER_PROMETHEUS_HOST/_PORT"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


class PrometheusServer:
    def __init__(self, listen: str, pipeline: Pipeline) -> None:
        host, port = _split(listen)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self._answer(404, "text/plain; charset=utf-8", "polytel serves GET /metrics\n")
                    return
                # Prometheus asks for OpenMetrics in its Accept header when it can read it.
                openmetrics = "application/openmetrics-text" in (self.headers.get("Accept") or "")
                try:
                    content_type, body = pipeline.scrape(openmetrics)
                except Exception as e:
                    self._answer(500, "text/plain; charset=utf-8", f"polytel could not render metrics: {e}\n")
                    return
                self._answer(200, content_type, body)

            def _answer(self, status: int, content_type: str, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        try:
            self._server = Server((host, port), Handler)
        except OSError as e:
            raise ConfigurationError(
                f"cannot serve Prometheus metrics on {listen}: {e.strerror or e}; set another host:port with "
                "prometheus_listen or OTEL_EXPORTER_PROMETHEUS_HOST/_PORT"
            ) from None
        self.address: Tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="polytel-prometheus", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
