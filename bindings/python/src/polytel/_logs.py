"""Log records: ``polytel.log`` and ``LoggingHandler``, which turns the standard
library's logging records into OpenTelemetry log records carrying the current
span's trace and span ids."""

from __future__ import annotations

import logging
import traceback
from typing import Any, Dict, Optional, Tuple, Union

from . import _state, _values
from ._spans import Span, _current

# (severity number, severity text) by name, as the OpenTelemetry log data
# model numbers them (the first number of each range).
_SEVERITIES: Dict[str, Tuple[int, str]] = {
    "trace": (1, "TRACE"),
    "debug": (5, "DEBUG"),
    "info": (9, "INFO"),
    "warn": (13, "WARN"),
    "warning": (13, "WARN"),
    "error": (17, "ERROR"),
    "fatal": (21, "FATAL"),
    "critical": (21, "FATAL"),
}

Level = Union[str, int]


def severity_of_logging_level(level: int) -> int:
    """The severity number of a ``logging`` level: DEBUG 5, INFO 9, WARNING 13,
    ERROR 17, CRITICAL 21; levels in between take the next number up within
    the range below them (15 is DEBUG2 = 6 … up to DEBUG4 = 8)."""
    if level <= 0:
        return 0
    if level < logging.DEBUG:
        return 1 + min(3, (level - 1) * 4 // logging.DEBUG)
    base, step = 5, logging.INFO - logging.DEBUG
    for floor in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        if level < floor + step:
            return base + min(3, (level - floor) * 4 // step)
        base += 4
    return min(24, 21 + (level - logging.CRITICAL) * 4 // step)


def severity(level: Level) -> Tuple[int, str]:
    if isinstance(level, str):
        try:
            return _SEVERITIES[level.lower()]
        except KeyError:
            raise ValueError(
                f"log level {level!r} is not one of trace, debug, info, warn, error, fatal (or a logging level number)"
            ) from None
    n = int(level)
    return severity_of_logging_level(n), logging.getLevelName(n)


def log(
    level: Level,
    message: Any,
    attributes: _values.Attributes = None,
    *,
    event_name: Optional[str] = None,
    span: Optional[Span] = None,
    **more: Any,
) -> None:
    p = _state.pipeline
    if p is None or not p.logs:
        return
    number, text = severity(level)
    rec: Dict[str, Any] = {"severity": number, "severity_text": text, "body": _values.value(message)}
    if attributes or more:
        attrs = _values.attributes(attributes)
        if more:
            attrs.update(_values.attributes(more))
        rec["attributes"] = attrs
    if event_name:
        rec["event_name"] = event_name
    if span is None:
        span = _current.get()
    p.emit_log(rec, span if span is not None and span._pipeline is not None else None, None)


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class LoggingHandler(logging.Handler):
    """A ``logging.Handler`` that sends each record as an OpenTelemetry log
    record: severity from the level, the formatted message as the body, the
    logger's name as the instrumentation scope, source location, thread,
    exception and ``extra=`` fields as attributes, and the current span's ids.

    ``logging.getLogger().addHandler(polytel.LoggingHandler())``
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        p = _state.pipeline
        if p is None or not p.logs:
            return
        # polytel's own warnings are not fed back into it.
        if record.name == "polytel" or record.name.startswith("polytel."):
            return
        try:
            rec = _record(record)
            span = _current.get()
            p.emit_log(
                rec, span if span is not None and span._pipeline is not None else None, int(record.created * 1e9)
            )
        except Exception:
            self.handleError(record)


def _record(record: logging.LogRecord) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {
        "code.file.path": record.pathname,
        "code.function.name": record.funcName,
        "code.line.number": record.lineno,
        "thread.id": record.thread,
        "thread.name": record.threadName,
    }
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        attrs["exception.type"] = type(exc).__qualname__
        attrs["exception.message"] = str(exc)
        attrs["exception.stacktrace"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for k, v in record.__dict__.items():
        if k not in _STANDARD and not k.startswith("_"):
            attrs[k] = _values.value(v)
    out: Dict[str, Any] = {
        "severity": severity_of_logging_level(record.levelno),
        "severity_text": record.levelname,
        "body": record.getMessage(),
        "attributes": {k: v for k, v in attrs.items() if v is not None},
        "scope": {"name": record.name, "version": ""},
    }
    return out
