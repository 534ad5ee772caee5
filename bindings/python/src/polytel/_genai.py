"""GenAI operations: LLM calls, agent runs, tool calls, workflow runs and
memory operations. Each is a span that also carries the "genai" member of
``record-spans`` (``wit/polytel.wit``); the core names it, writes the semantic
conventions' attributes, prices its usage, derives the metrics and the
``stats()["operations"]`` summary. This module only keeps an operation's
fields and writes them into its record.

An operation is recorded and sent whenever telemetry is not disabled, sampled
or not (the core counts every one and exports the sampled ones). The agent an
operation runs in follows ``contextvars`` like the current span."""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Type, TypeVar, Union

from . import _decorate, _spans, _state, _values
from ._spans import _CURRENT, Context, Span, SpanContext, SpanKind

if TYPE_CHECKING:
    from types import TracebackType

F = TypeVar("F", bound=Callable[..., Any])

#: The usage counters, in the order the record lists them.
_USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")

#: The name of the agent operation the code runs in, if any.
_agent: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("polytel.agent", default=None)


class Operation(Span):
    """A started GenAI operation: a span (every span method works) that also
    keeps token usage, the responding model, a known cost and, when content
    capture is on, the input and output."""

    __slots__ = (
        "_agent",
        "_agent_tokens",
        "_capture",
        "_cost",
        "_inner_agent",
        "_input",
        "_operation",
        "_output",
        "_provider",
        "_response_model",
        "_target",
        "_usage",
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._operation = ""
        self._target = ""
        self._provider: Optional[str] = None
        #: The enclosing agent's name.
        self._agent: Optional[str] = None
        #: The agent name operations inside this one carry.
        self._inner_agent: Optional[str] = None
        self._capture = False
        self._response_model: Optional[str] = None
        self._usage: Optional[Dict[str, int]] = None
        self._cost: Optional[float] = None
        self._input: Any = None
        self._output: Any = None
        self._agent_tokens: Optional[List[contextvars.Token[Optional[str]]]] = None

    def __repr__(self) -> str:
        return (
            f"<polytel.Operation {self._operation} {self._target!r} trace_id={self.trace_id} "
            f"span_id={self.span_id} recording={self._recording}>"
        )

    def record_usage(
        self,
        *,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        cache_read_tokens: Optional[int] = None,
        cache_write_tokens: Optional[int] = None,
        reasoning_tokens: Optional[int] = None,
    ) -> None:
        """Adds token counts to the operation's totals (input tokens include
        cache reads and writes); counters never given are not sent."""
        if not self._recording:
            return
        usage = self._usage
        if usage is None:
            usage = self._usage = {}
        given = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)
        for key, n in zip(_USAGE, given):
            if n is not None:
                try:
                    usage[key] = usage.get(key, 0) + int(n)
                except (TypeError, ValueError):
                    pass  # not a count: left out rather than failing the caller

    def set_response_model(self, model: str) -> None:
        """The model that answered (when it differs from the one requested)."""
        if self._recording:
            self._response_model = str(model)

    def record_cost(self, usd: float) -> None:
        """The operation's cost in US dollars, when the application knows it
        (otherwise the core prices the usage); a later call replaces it."""
        if not self._recording:
            return
        try:
            cost = float(usd)
        except (TypeError, ValueError):
            return
        if math.isfinite(cost):
            self._cost = cost

    def record_input(self, value: Any) -> None:
        """The prompt, a tool's arguments, a memory query (any attribute
        value); kept only when content capture is on, else not even read."""
        if self._capture and self._recording and value is not None:
            self._input = _values.value(value)

    def record_output(self, value: Any) -> None:
        """The response, a tool's result, the records a memory returned; kept
        only when content capture is on, else not even read."""
        if self._capture and self._recording and value is not None:
            self._output = _values.value(value)

    def _record(self, end: int) -> Dict[str, Any]:
        rec = super()._record(end)
        genai: Dict[str, Any] = {"operation": self._operation, "name": self._target}
        if self._provider is not None:
            genai["provider"] = self._provider
        if self._agent is not None:
            genai["agent"] = self._agent
        if self._response_model is not None:
            genai["response_model"] = self._response_model
        usage = self._usage
        if usage:
            genai["usage"] = {k: usage[k] for k in _USAGE if k in usage}
        if self._cost is not None:
            genai["cost"] = self._cost
        if self._input is not None:
            genai["input"] = self._input
        if self._output is not None:
            genai["output"] = self._output
        rec["genai"] = genai
        p = self._pipeline
        if not (self.sampled and p is not None and p.traces):
            rec["sampled"] = False
        return rec

    def __enter__(self) -> Operation:
        super().__enter__()
        self._agent_tokens = _spans.push_context(_agent, self._inner_agent, self._agent_tokens)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        _spans.pop_context(_agent, self._agent_tokens)
        super().__exit__(exc_type, exc, tb)


ParentLike = Union[Span, SpanContext, Context, None]


def start(
    operation: str,
    name: str,
    provider: Optional[str],
    attributes: _values.Attributes,
    kind: Union[SpanKind, str, None],
    parent: Any,
) -> Operation:
    """Starts an operation like a span (ids, sampling, clock, parent), with
    the agent it runs in: an operation parent's, else the context's."""
    if parent is _CURRENT:
        parent = _spans._current.get()
    op = _spans.start(_state.pipeline, "", attributes, kind, parent, None, None, Operation, True)
    op._operation = operation
    op._target = name
    op._provider = provider
    agent = parent._inner_agent if isinstance(parent, Operation) else _agent.get()
    op._agent = agent
    op._inner_agent = name if operation == "invoke_agent" else agent
    p = op._pipeline
    op._capture = p is not None and p.genai_capture
    return op


class OperationSpec:
    """What ``llm_call``, ``agent``, ``tool``, ``workflow`` and ``memory``
    return: a context manager that starts the operation and makes it current
    (``with polytel.tool("search") as op:``), a decorator that makes each call
    of a sync or async function an operation (``@polytel.tool("search")``),
    or ``start()`` for an operation ended by hand."""

    __slots__ = ("_attributes", "_kind", "_name", "_operation", "_parent", "_provider", "_started")

    def __init__(
        self,
        operation: str,
        name: str,
        provider: Optional[str],
        attributes: _values.Attributes,
        kind: Union[SpanKind, str, None],
        parent: Any,
    ) -> None:
        self._operation = operation
        self._name = name
        self._provider = provider
        self._attributes = attributes
        self._kind = kind
        self._parent = parent
        self._started: List[Operation] = []

    def start(self) -> Operation:
        """Starts the operation without making it current; end it with ``end()``."""
        return start(self._operation, self._name, self._provider, self._attributes, self._kind, self._parent)

    def __enter__(self) -> Operation:
        op = self.start()
        self._started.append(op)
        return op.__enter__()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # The operation this block entered: the current one (blocks nest),
        # whichever thread or task shares this object.
        started, current = self._started, _spans._current.get()
        i = next((i for i, op in enumerate(started) if op is current), len(started) - 1)
        if i >= 0:
            started.pop(i).__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        return _decorate.wrap(func, self.start)


def llm_call(
    provider: str,
    model: str,
    *,
    operation: str = "chat",
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str, None] = None,
    parent: ParentLike = _CURRENT,
) -> OperationSpec:
    """A call to a model: ``operation`` is ``chat`` (default),
    ``text_completion``, ``embeddings`` or ``generate_content``::

        with polytel.llm_call("openai", "gpt-4o") as call:
            call.record_usage(input_tokens=412, output_tokens=96)
    """
    return OperationSpec(operation, model, provider, attributes, kind, parent)


def agent(
    name: str,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str, None] = None,
    parent: ParentLike = _CURRENT,
) -> OperationSpec:
    """An agent run (invoke_agent); operations inside it carry its name."""
    return OperationSpec("invoke_agent", name, None, attributes, kind, parent)


def tool(
    name: str,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str, None] = None,
    parent: ParentLike = _CURRENT,
) -> OperationSpec:
    """A tool call (execute_tool)."""
    return OperationSpec("execute_tool", name, None, attributes, kind, parent)


def workflow(
    name: str,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str, None] = None,
    parent: ParentLike = _CURRENT,
) -> OperationSpec:
    """A workflow run (invoke_workflow)."""
    return OperationSpec("invoke_workflow", name, None, attributes, kind, parent)


def memory(
    operation: str,
    store: str,
    *,
    attributes: _values.Attributes = None,
    kind: Union[SpanKind, str, None] = None,
    parent: ParentLike = _CURRENT,
) -> OperationSpec:
    """A memory operation (such as ``search_memory``) on a memory store."""
    return OperationSpec(operation, store, None, attributes, kind, parent)


def current_operation() -> Optional[Operation]:
    """The current span if it is a GenAI operation (inside a decorated function, say)."""
    s = _spans._current.get()
    return s if isinstance(s, Operation) else None
