"""polytel: traces, metrics and logs to any OpenTelemetry backend with one call.

The telemetry core (configuration, limits, sampling policy, aggregation,
batching, OTLP encoding and delivery policy) is one WebAssembly component,
shared with polytel's other languages and run here with wasmtime; this package
is the Python API around it::

    import polytel

    polytel.configure(backend="honeycomb", honeycomb_api_key="...", service_name="agent")
    with polytel.agent("planner"), polytel.llm_call("openai", "gpt-4o") as call:
        call.record_usage(input_tokens=412, output_tokens=96)
    with polytel.span("load documents") as s:
        s.set_attribute("documents", 12)

Everything else comes from the environment (``OTEL_*``, ``POLYTEL_*``) when not
given. Spans, measurements and log records made before ``configure`` are not
recorded; instruments made before it (at import time, say) work once it is
called.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    overload,
)

from . import _core, _decorate, _metrics, _spans, _state, _values
from ._core import ComponentMissingError, ConfigurationError
from ._genai import Operation, OperationSpec, agent, current_operation, llm_call, memory, tool, workflow
from ._logs import LoggingHandler, log
from ._metrics import (
    Callback,
    Counter,
    Gauge,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    Observation,
    UpDownCounter,
)
from ._pipeline import Clock, Pipeline, ShutdownReport, __version__
from ._spans import _CURRENT, Context, Link, Span, SpanContext, SpanKind, StatusCode, current_span

__all__ = [
    "ComponentMissingError",
    "ConfigurationError",
    "Context",
    "Counter",
    "Gauge",
    "Histogram",
    "Link",
    "LoggingHandler",
    "ObservableCounter",
    "ObservableGauge",
    "ObservableUpDownCounter",
    "Observation",
    "Operation",
    "OperationSpec",
    "ShutdownReport",
    "Span",
    "SpanContext",
    "SpanKind",
    "StatusCode",
    "UpDownCounter",
    "__version__",
    "agent",
    "configure",
    "counter",
    "current_operation",
    "current_span",
    "describe",
    "extract",
    "force_flush",
    "gauge",
    "histogram",
    "inject",
    "llm_call",
    "log",
    "memory",
    "observable_counter",
    "observable_gauge",
    "observable_up_down_counter",
    "shutdown",
    "span",
    "stats",
    "tool",
    "traced",
    "up_down_counter",
    "use_span",
    "workflow",
]

_configure_lock = threading.Lock()

#: How long the exit hook waits for the last export.
EXIT_TIMEOUT = 5.0


def configure(
    *,
    env: Optional[Mapping[str, str]] = None,
    seed: Optional[int] = None,
    clock: Optional[Clock] = None,
    host_facts: Optional[Mapping[str, Any]] = None,
    core_memory_limit: Optional[int] = None,
    **options: Any,
) -> None:
    """Configures telemetry for this process and starts its export worker.

    ``options`` are the core's option names (``backend``, ``service_name``,
    ``endpoint``, ``headers``, ``protocol``, ``honeycomb_api_key``,
    ``sentry_dsn``, …; the README lists them) and rank above the environment,
    which ranks above a config file (``config_file=`` or ``POLYTEL_CONFIG``),
    which ranks above defaults. With no options, everything comes from the
    environment.

    The keyword arguments before them steer this host and go to tests more
    than to applications: ``env`` replaces ``os.environ`` as the environment the
    core reads, ``seed`` fixes span and trace ids, ``clock`` returns unix
    nanoseconds for every timestamp, ``host_facts`` replaces what resource
    detection reads about this machine, ``core_memory_limit`` caps the core's
    memory in bytes (default 512 MiB).

    Calling it again shuts the previous configuration down (flushing it) and
    replaces it. Raises ``ConfigurationError`` with one sentence saying what is
    wrong and how to fix it.
    """
    with _configure_lock:
        old = _state.pipeline
        if old is not None:
            _state.pipeline = None
            old.shutdown(timeout=2.0)
        p = Pipeline(
            options,
            env=env,
            seed=seed,
            clock=clock,
            host_facts=host_facts,
            core_memory_limit=core_memory_limit,
            observe=_metrics.observe,
        )
        # Instruments made before now get their ids in the order they were made.
        _metrics.register_all(p)
        _state.pipeline = p


def shutdown(timeout: float = 5.0) -> ShutdownReport:
    """Flushes what was recorded (waiting at most ``timeout`` seconds), then
    stops; what could not be delivered is dropped and counted. Also runs at
    interpreter exit. Safe to call more than once."""
    with _configure_lock:
        p = _state.pipeline
        _state.pipeline = None
    if p is None:
        return ShutdownReport(0, True)
    return p.shutdown(timeout)


def force_flush(timeout: float = 5.0) -> bool:
    """Exports everything recorded so far; returns whether that finished within ``timeout`` seconds."""
    p = _state.pipeline
    return True if p is None else p.force_flush(timeout)


def stats() -> Dict[str, Any]:
    """The core's counters per signal (received, exported, dropped by reason,
    retried, queued), the summary of every GenAI operation ended so far under
    ``"operations"`` (count, errors by type, duration p50/p95/p99, tokens,
    cost), and this host's own counters under ``"host"``."""
    p = _state.pipeline
    return {} if p is None else p.stats()


def describe() -> Dict[str, Any]:
    """Where each signal goes (URL, protocol, encoding, header names with masked values)."""
    p = _state.pipeline
    return {} if p is None else p.describe()


# -- spans ---------------------------------------------------------------------


def span(
    name: str,
    attributes: _values.Attributes = None,
    *,
    kind: Union[SpanKind, str] = SpanKind.INTERNAL,
    parent: Union[Span, SpanContext, Context, None] = _CURRENT,
    links: Optional[Iterable[Union[Link, SpanContext, Span]]] = None,
    start_time: Optional[int] = None,
) -> Span:
    """Starts a span, a child of the current span unless ``parent`` says
    otherwise (``None``: a new trace; a ``Context`` from ``extract``: continues
    an upstream trace). Use it as a context manager to make it current and end
    it; an exception leaving the block is recorded and sets the error status::

        with polytel.span("chat gpt-4o", {"gen_ai.request.model": "gpt-4o"}, kind="client") as s:
            s.set_attribute("gen_ai.usage.input_tokens", 412)
    """
    return _spans.start(_state.pipeline, name, attributes, kind, parent, links, start_time)


@contextlib.contextmanager
def use_span(s: Span, *, end_on_exit: bool = False) -> Iterator[Span]:
    """Makes ``s`` the current span inside the block without ending it
    (unless ``end_on_exit``)."""
    token = _spans._current.set(s)
    try:
        yield s
    finally:
        try:
            _spans._current.reset(token)
        except ValueError:
            _spans._current.set(None)
        if end_on_exit:
            s.end()


F = TypeVar("F", bound=Callable[..., Any])


@overload
def traced(name: F) -> F: ...


@overload
def traced(
    name: Optional[str] = None,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str] = SpanKind.INTERNAL,
) -> Callable[[F], F]: ...


def traced(
    name: Union[str, Callable[..., Any], None] = None,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str] = SpanKind.INTERNAL,
) -> Any:
    """Traces every call of a function (sync or async, generators too) as a
    span named ``name`` (default: the function's qualified name)::

        @polytel.traced()
        async def fetch_page(url): ...

        @polytel.traced("execute_tool search", kind="internal")
        def search(query): ...
    """
    if callable(name):
        return traced()(name)

    def decorate(func: F) -> F:
        span_name = name if isinstance(name, str) and name else getattr(func, "__qualname__", repr(func))
        return _decorate.wrap(func, lambda: span(span_name, attributes, kind=kind))

    return decorate


# -- propagation ----------------------------------------------------------------


def inject(
    headers: Optional[MutableMapping[str, str]] = None,
    *,
    span: Union[Span, SpanContext, Context, None] = None,
) -> MutableMapping[str, str]:
    """Adds the W3C headers (``traceparent``, ``tracestate``, ``baggage``) that
    carry the current span (or ``span``) to a downstream service; returns
    ``headers`` (a new dict when none is given)."""
    out: MutableMapping[str, str] = {} if headers is None else headers
    p = _state.pipeline
    target: Any = _spans._current.get() if span is None else span
    baggage: Sequence[Any] = ()
    if isinstance(target, Context):
        baggage, target = target.baggage, target.span_context
    elif isinstance(target, Span):
        baggage = target.baggage
    if p is None or target is None or target.trace_id == "0" * 32:
        return out
    out.update(p.inject(target, baggage))
    return out


def extract(headers: Union[Mapping[str, str], Iterable[Any]]) -> Context:
    """Reads W3C trace context and baggage from incoming headers (any mapping,
    or pairs); pass the result as ``parent=`` to continue the upstream trace."""
    p = _state.pipeline
    if p is None:
        return Context(None)
    return p.extract(headers)


# -- metrics -----------------------------------------------------------------------


def counter(name: str, *, unit: str = "", description: str = "") -> Counter:
    """A monotonic counter: ``.add(value, attributes)`` with non-negative increments."""
    return Counter(name, unit, description)


def up_down_counter(name: str, *, unit: str = "", description: str = "") -> UpDownCounter:
    """A counter that goes up and down: ``.add(value, attributes)``."""
    return UpDownCounter(name, unit, description)


def histogram(
    name: str,
    *,
    unit: str = "",
    description: str = "",
    boundaries: Optional[Sequence[float]] = None,
    exponential: bool = False,
) -> Histogram:
    """A distribution: ``.record(value, attributes)``; explicit bucket
    ``boundaries`` (default: the specification's), or base-2 exponential
    buckets with ``exponential=True``."""
    return Histogram(name, unit, description, boundaries, "exponential" if exponential else None)


def gauge(name: str, *, unit: str = "", description: str = "") -> Gauge:
    """The last value recorded wins: ``.record(value, attributes)``."""
    return Gauge(name, unit, description)


def _callbacks(callbacks: Union[Callback, Sequence[Callback], None]) -> Sequence[Callback]:
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    return list(callbacks)


def observable_counter(
    name: str, callbacks: Union[Callback, Sequence[Callback], None] = None, *, unit: str = "", description: str = ""
) -> ObservableCounter:
    """A running total that ``callbacks`` report before each collection. A
    callback returns a number, an ``Observation``, or an iterable of numbers,
    ``Observation``s and ``(value, attributes)`` pairs."""
    return ObservableCounter(name, _callbacks(callbacks), unit, description)


def observable_up_down_counter(
    name: str, callbacks: Union[Callback, Sequence[Callback], None] = None, *, unit: str = "", description: str = ""
) -> ObservableUpDownCounter:
    """A current value that goes up and down, reported by ``callbacks`` before each collection."""
    return ObservableUpDownCounter(name, _callbacks(callbacks), unit, description)


def observable_gauge(
    name: str, callbacks: Union[Callback, Sequence[Callback], None] = None, *, unit: str = "", description: str = ""
) -> ObservableGauge:
    """A current value reported by ``callbacks`` before each collection."""
    return ObservableGauge(name, _callbacks(callbacks), unit, description)


# -- exit ----------------------------------------------------------------------------


def _at_exit() -> None:
    if _state.pipeline is not None:
        shutdown(EXIT_TIMEOUT)
    _core.close_all()


atexit.register(_at_exit)
