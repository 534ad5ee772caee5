"""The side-by-side scenario exported by the official Azure Monitor exporter
(``azure-monitor-opentelemetry-exporter`` on ``opentelemetry-sdk``).

Run as a subprocess by test_azure_side_by_side.py, so the official SDK's
global state (its providers, statsbeat, atexit hooks) never reaches the other
tests: ``python azure_official.py CONNECTION_STRING``. It uses its own provider
instances, never the global ones, and flushes and shuts them down before exiting.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict

# The scenario shared with the polytel side (kept in one place: the test imports these).
RESOURCE: Dict[str, Any] = {
    "service.name": "shop",
    "service.namespace": "retail",
    "service.version": "1.2.3",
    "service.instance.id": "shop-1",
}
SERVER_NAME = "GET /items/{id}"
SERVER_ATTRS: Dict[str, Any] = {
    "http.request.method": "GET",
    "url.full": "http://shop.test/items/7",
    "http.route": "/items/{id}",
    "http.response.status_code": 200,
    "app.tier": "gold",
}
CLIENT_NAME = "GET"
CLIENT_ATTRS: Dict[str, Any] = {
    "http.request.method": "GET",
    "url.full": "http://stock.test:8080/stock?item=7",
    "server.address": "stock.test",
    "server.port": 8080,
    "http.response.status_code": 200,
}
INTERNAL_NAME = "price lookup"
INTERNAL_ATTRS: Dict[str, Any] = {"app.retries": 2, "app.cached": True}
EXCEPTION_ATTRS: Dict[str, Any] = {
    "exception.type": "ValueError",
    "exception.message": "price missing",
    "exception.stacktrace": 'Traceback (most recent call last):\n  File "shop.py", line 1\nValueError: price missing',
}
LOG_MESSAGE = "stock low"
LOG_ATTRS: Dict[str, Any] = {"item.id": "7", "app.left": 3}
COUNTER_NAME = "items.sold"
COUNTER_VALUE = 3
COUNTER_ATTRS: Dict[str, Any] = {"color": "red"}


def emit_warning(logger: logging.Logger) -> None:
    """The scenario's log record; both sides call it, so the source location is the same."""
    logger.warning(LOG_MESSAGE, extra=LOG_ATTRS)


def run(connection_string: str) -> None:
    # Set before the exporter is imported: no statsbeat and no customer SDK stats
    # (Item_*_Count metrics), so it sends only the scenario, and only to the fake endpoint.
    os.environ["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    os.environ["APPLICATIONINSIGHTS_SDKSTATS_DISABLED"] = "true"
    from azure.monitor.opentelemetry.exporter import (  # type: ignore[import-untyped,unused-ignore]
        AzureMonitorLogExporter,
        AzureMonitorMetricExporter,
        AzureMonitorTraceExporter,
    )
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, use_span

    opts: Any = {"connection_string": connection_string, "disable_offline_storage": True}
    resource = Resource.create(RESOURCE)
    tracer_provider = TracerProvider(resource=resource)
    # One batch: the exporter adds its _OTELRESOURCE_ metric envelope once per export call.
    tracer_provider.add_span_processor(
        BatchSpanProcessor(AzureMonitorTraceExporter(tracer_provider=tracer_provider, **opts))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(AzureMonitorLogExporter(**opts)))
    reader = PeriodicExportingMetricReader(AzureMonitorMetricExporter(**opts), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("side-by-side")
    logger = logging.getLogger("side-by-side")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(logger_provider=logger_provider))
    counter = meter_provider.get_meter("side-by-side").create_counter(COUNTER_NAME)

    server = tracer.start_span(SERVER_NAME, kind=SpanKind.SERVER, attributes=SERVER_ATTRS)
    with use_span(server, end_on_exit=True):
        with tracer.start_as_current_span(CLIENT_NAME, kind=SpanKind.CLIENT, attributes=CLIENT_ATTRS):
            pass
        with tracer.start_as_current_span(INTERNAL_NAME, attributes=INTERNAL_ATTRS) as internal:
            internal.add_event("exception", EXCEPTION_ATTRS)
        emit_warning(logger)
    counter.add(COUNTER_VALUE, COUNTER_ATTRS)

    tracer_provider.force_flush()
    logger_provider.force_flush()
    meter_provider.force_flush()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()


if __name__ == "__main__":
    run(sys.argv[1])
