"""Spans. A span lives in Python until it ends; then its record (a dict in the
batch JSON shape of ``record-spans`` in ``wit/polytel.wit``) goes into the
buffer the export worker ships to the core. The current span follows
``contextvars``, so it is right in threads and in asyncio tasks."""

from __future__ import annotations

import contextvars
import enum
import traceback
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Type, TypeVar, Union

from . import _values

if TYPE_CHECKING:
    from types import TracebackType

    from ._pipeline import Pipeline


class SpanKind(enum.IntEnum):
    """OTLP span kinds."""

    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    UNSET = 0
    OK = 1
    ERROR = 2


_KINDS = {
    "internal": 1,
    "server": 2,
    "client": 3,
    "producer": 4,
    "consumer": 5,
}
_STATUSES = {"unset": 0, "ok": 1, "error": 2}


def kind_number(kind: Union[SpanKind, str, int]) -> int:
    if type(kind) is SpanKind:
        return int(kind)
    if isinstance(kind, str):
        try:
            return _KINDS[kind.lower()]
        except KeyError:
            raise ValueError(f"span kind {kind!r} is not one of internal, server, client, producer, consumer") from None
    k = int(kind)
    if not 1 <= k <= 5:
        raise ValueError(f"span kind {k} is not an OTLP span kind (1 internal to 5 consumer)")
    return k


class SpanContext:
    """The identity of a span, local or received from upstream: what a child,
    a link or a downstream service needs."""

    __slots__ = ("remote", "sampled", "span_id", "trace_id", "trace_state")

    def __init__(
        self, trace_id: str, span_id: str, sampled: bool = True, remote: bool = False, trace_state: str = ""
    ) -> None:
        #: 32 lower-case hex digits.
        self.trace_id = trace_id
        #: 16 lower-case hex digits.
        self.span_id = span_id
        self.sampled = sampled
        self.remote = remote
        self.trace_state = trace_state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpanContext) and (
            self.trace_id,
            self.span_id,
            self.sampled,
            self.remote,
            self.trace_state,
        ) == (other.trace_id, other.span_id, other.sampled, other.remote, other.trace_state)

    def __hash__(self) -> int:
        return hash((self.trace_id, self.span_id))

    def __repr__(self) -> str:
        return (
            f"SpanContext(trace_id={self.trace_id!r}, span_id={self.span_id!r}, sampled={self.sampled}, "
            f"remote={self.remote}, trace_state={self.trace_state!r})"
        )


class Context:
    """What ``extract`` read from incoming headers: the upstream span (if a
    valid ``traceparent`` was there) and the baggage. Pass it as ``parent=``."""

    __slots__ = ("baggage", "span_context")

    def __init__(self, span_context: Optional[SpanContext], baggage: Sequence[Tuple[str, str]] = ()) -> None:
        self.span_context = span_context
        self.baggage: Tuple[Tuple[str, str], ...] = tuple(baggage)

    def __bool__(self) -> bool:
        return self.span_context is not None or bool(self.baggage)

    def __repr__(self) -> str:
        return f"Context(span_context={self.span_context!r}, baggage={list(self.baggage)!r})"


class Link:
    """A link from a span to another span (``links=[Link(ctx, {...})]``)."""

    __slots__ = ("attributes", "context")

    def __init__(self, context: Union[SpanContext, Span], attributes: _values.Attributes = None) -> None:
        self.context = context.context if isinstance(context, Span) else context
        self.attributes = attributes


ParentLike = Union["Span", SpanContext, Context, None]
S = TypeVar("S", bound="Span")

_current: contextvars.ContextVar[Optional[Span]] = contextvars.ContextVar("polytel.span", default=None)

_V = TypeVar("_V")


def push_context(
    var: contextvars.ContextVar[Optional[_V]],
    value: _V,
    tokens: Optional[List[contextvars.Token[Optional[_V]]]],
) -> List[contextvars.Token[Optional[_V]]]:
    """Sets `var` for a `with` block; the token goes on the object's stack (an
    object may be entered again before it exits)."""
    token = var.set(value)
    if tokens is None:
        return [token]
    tokens.append(token)
    return tokens


def pop_context(
    var: contextvars.ContextVar[Optional[_V]], tokens: Optional[List[contextvars.Token[Optional[_V]]]]
) -> None:
    """Undoes the latest `push_context` of `var`."""
    if tokens:
        token = tokens.pop()
        try:
            var.reset(token)
        except ValueError:
            # Exited in another context than it was entered in (a generator
            # resumed elsewhere): restore what it replaced.
            var.set(token.old_value if token.old_value is not token.MISSING else None)


def current_span() -> Optional[Span]:
    """The span current in this thread or task, if any."""
    return _current.get()


def _exception_parts(exc: BaseException) -> Tuple[str, str, str]:
    t = type(exc)
    try:
        message = str(exc)
    except Exception:
        message = ""
    try:
        stack = "".join(traceback.format_exception(t, exc, exc.__traceback__))
    except Exception:
        stack = ""
    return t.__qualname__, message, stack


class Span:
    """A started span; ``with polytel.span(...) as s`` makes it current and
    ends it. Methods on a span that is not recording (not sampled, traces
    going nowhere, or polytel not configured) do nothing."""

    __slots__ = (
        "__weakref__",
        "_attributes",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent_id",
        "_parent_remote",
        "_pipeline",
        "_recording",
        "_start",
        "_status",
        "_status_message",
        "_tokens",
        "baggage",
        "sampled",
        "span_id",
        "trace_id",
        "trace_state",
    )

    remote = False
    # Set only while recording (see Pipeline.start_span).
    _name: str
    _kind: int
    _parent_id: Optional[str]
    _parent_remote: bool
    _start: int
    _attributes: Dict[str, Any]
    _events: List[Dict[str, Any]]
    _links: Optional[List[Dict[str, Any]]]
    _status: int
    _status_message: str

    def __init__(
        self,
        pipeline: Optional[Pipeline],
        trace_id: str,
        span_id: str,
        sampled: bool,
        trace_state: str,
        baggage: Tuple[Tuple[str, str], ...],
        recording: bool,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.trace_state = trace_state
        self.baggage = baggage
        self._pipeline = pipeline
        self._recording = recording
        self._tokens: Optional[List[contextvars.Token[Optional[Span]]]] = None

    # -- identity -----------------------------------------------------------

    @property
    def context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, self.sampled, False, self.trace_state)

    def is_recording(self) -> bool:
        return self._recording

    def __repr__(self) -> str:
        name = self._name if self._recording else ""
        return f"<polytel.Span {name!r} trace_id={self.trace_id} span_id={self.span_id} recording={self._recording}>"

    # -- recording ----------------------------------------------------------

    def set_attribute(self, key: str, value: Any) -> None:
        """Sets an attribute; a later value for the same key replaces an earlier one."""
        if self._recording:
            t = type(value)
            if t is str or t is int or t is bool:
                self._attributes[key] = value
            else:
                self._attributes[key] = _values.value(value)

    def set_attributes(self, attributes: _values.Attributes) -> None:
        if self._recording and attributes:
            self._attributes.update(_values.attributes(attributes))

    def add_event(self, name: str, attributes: _values.Attributes = None) -> None:
        if self._recording:
            event: Dict[str, Any] = {"name": name, "time": self._pipeline.now()}  # type: ignore[union-attr]
            if attributes:
                event["attributes"] = _values.attributes(attributes)
            self._events.append(event)

    def record_exception(
        self,
        exception: Optional[BaseException] = None,
        *,
        type: Optional[str] = None,
        message: Optional[str] = None,
        stacktrace: Optional[str] = None,
        escaped: bool = False,
    ) -> None:
        """Records an exception as an ``exception`` event: its type, message
        and formatted traceback. ``type``, ``message`` and ``stacktrace``
        replace what is read from ``exception`` (or stand alone without one)."""
        if not self._recording:
            return
        ty, msg, stack = _exception_parts(exception) if exception is not None else ("", "", "")
        if type is not None:
            ty = type
        if message is not None:
            msg = message
        if stacktrace is not None:
            stack = stacktrace
        exc: Dict[str, Any] = {"type": ty, "message": msg}
        if stack:
            exc["stacktrace"] = stack
        if escaped:
            exc["escaped"] = True
        self._events.append({"time": self._pipeline.now(), "exception": exc})  # type: ignore[union-attr]

    def set_status(self, code: Union[StatusCode, str, int], message: Optional[str] = None) -> None:
        """``"ok"`` is final; ``"error"`` takes a description; ``"unset"`` never
        replaces anything."""
        if not self._recording:
            return
        if isinstance(code, str):
            try:
                c = _STATUSES[code.lower()]
            except KeyError:
                raise ValueError(f"status {code!r} is not one of ok, error, unset") from None
        else:
            c = int(code)
        if self._status == 1 or c == 0:
            return
        self._status = c
        self._status_message = (message or "") if c == 2 else ""

    def update_name(self, name: str) -> None:
        if self._recording:
            self._name = name

    def end(self, end_time: Optional[int] = None) -> None:
        """Ends the span (once; later calls do nothing). ``end_time`` is unix
        nanoseconds, default now."""
        if not self._recording:
            return
        self._recording = False
        p = self._pipeline
        assert p is not None
        p.enqueue_span(self._record(p.now() if end_time is None else end_time))

    def _record(self, end: int) -> Dict[str, Any]:
        """The span's record in the batch JSON shape of ``record-spans``."""
        rec: Dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": self._name,
            "kind": self._kind,
            "start": self._start,
            "end": end,
        }
        if self._parent_id:
            rec["parent_span_id"] = self._parent_id
            if self._parent_remote:
                rec["parent_remote"] = True
        if self.trace_state:
            rec["trace_state"] = self.trace_state
        if self._attributes:
            rec["attributes"] = self._attributes
        if self._events:
            rec["events"] = self._events
        if self._links:
            rec["links"] = self._links
        if self._status:
            rec["status"] = (
                {"code": 2, "message": self._status_message} if self._status == 2 else {"code": self._status}
            )
        return rec

    # -- context manager ----------------------------------------------------

    def __enter__(self) -> Span:
        self._tokens = push_context(_current, self, self._tokens)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        pop_context(_current, self._tokens)
        if exc is not None and self._recording and _is_failure(exc):
            self.record_exception(exc, escaped=True)
            self.set_status(2, f"{type(exc).__qualname__}: {exc}")
        if not self._tokens:
            self.end()


def _is_failure(exc: BaseException) -> bool:
    # Closing a generator and exiting the interpreter are not failures.
    return not isinstance(exc, (GeneratorExit, SystemExit)) or (
        isinstance(exc, SystemExit) and exc.code not in (None, 0)
    )


def start(
    pipeline: Optional[Pipeline],
    name: str,
    attributes: _values.Attributes,
    kind: Union[SpanKind, str, int, None],
    parent: Any,
    links: Optional[Iterable[Union[Link, SpanContext, Span]]],
    start_time: Optional[int],
    cls: Type[S] = Span,  # type: ignore[assignment]
    always: bool = False,
) -> S:
    """Starts a span of class ``cls`` under ``pipeline`` (None: polytel is not
    configured). With ``always`` it records whenever telemetry is not disabled,
    sampled or not (a GenAI operation: the core counts all of them)."""
    if parent is _CURRENT:
        parent = _current.get()
    baggage: Tuple[Tuple[str, str], ...] = ()
    if isinstance(parent, Context):
        baggage = parent.baggage
        parent = parent.span_context
    elif isinstance(parent, Span):
        baggage = parent.baggage
    if pipeline is None:
        # Not configured: a span that records nothing but keeps the parent's
        # identity, so propagation still passes context through.
        if parent is None:
            return cls(None, "0" * 32, "0" * 16, False, "", baggage, False)
        return cls(None, parent.trace_id, parent.span_id, parent.sampled, parent.trace_state, baggage, False)
    return pipeline.start_span(
        name, attributes, kind_number(kind) if kind is not None else 0, parent, links, baggage, start_time, cls, always
    )


class _CurrentMarker:
    def __repr__(self) -> str:
        return "<current span>"


#: The default of ``parent=``: the span current in this context.
_CURRENT: Any = _CurrentMarker()


def link_record(link: Union[Link, SpanContext, Span]) -> Dict[str, Any]:
    if isinstance(link, Link):
        ctx, attrs = link.context, link.attributes
    else:
        ctx, attrs = (link.context if isinstance(link, Span) else link), None
    rec: Dict[str, Any] = {"trace_id": ctx.trace_id, "span_id": ctx.span_id}
    if ctx.trace_state:
        rec["trace_state"] = ctx.trace_state
    if attrs:
        rec["attributes"] = _values.attributes(attrs)
    return rec
