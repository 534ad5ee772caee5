"""Metric instruments. An instrument is a small Python object that can be made
before ``configure`` (at import time, as libraries do); it is registered with
the core of the pipeline in use, in the order instruments were made, and a
measurement is one record in the buffer the export worker ships to the core,
which aggregates it."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _state, _values
from ._spans import _current

if TYPE_CHECKING:
    from ._pipeline import Pipeline


class Observation:
    """One value an observable instrument's callback reports, with its attributes."""

    __slots__ = ("attributes", "value")

    def __init__(self, value: float, attributes: _values.Attributes = None) -> None:
        self.value = value
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"Observation({self.value!r}, {self.attributes!r})"


#: What a callback may return: a number, an Observation, or an iterable of
#: numbers, Observations and (value, attributes) pairs.
CallbackResult = Union[float, Observation, Iterable[Union[float, Observation, Tuple[float, _values.Attributes]]], None]
Callback = Callable[[], CallbackResult]

# Every instrument made, in order (weakly: one the application dropped is
# gone), and the observable ones (strongly, until unregistered).
_instruments: List[weakref.ref[_Instrument]] = []
_observables: List[_Observable] = []
_registry_lock = threading.Lock()


class _Instrument:
    __slots__ = ("__weakref__", "_id", "_json", "_pipeline", "name")
    _kind = ""

    def __init__(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        boundaries: Optional[Sequence[float]] = None,
        aggregation: Optional[str] = None,
        scope: Optional[Tuple[str, str]] = None,
    ) -> None:
        self.name = name
        desc: Dict[str, Any] = {"name": name, "kind": self._kind, "unit": unit or "", "description": description or ""}
        if boundaries is not None:
            desc["boundaries"] = [_values.number(b) for b in boundaries]
        if aggregation is not None:
            desc["aggregation"] = aggregation
        if scope is not None:
            desc["scope"] = {"name": scope[0], "version": scope[1]}
        self._json = _values.ENCODER.encode(desc)
        self._pipeline: Optional[Pipeline] = None
        self._id = 0
        with _registry_lock:
            _instruments.append(weakref.ref(self))
        p = _state.pipeline
        if p is not None:
            self._bind(p)

    def _bind(self, p: Pipeline) -> int:
        if self._pipeline is not p:
            self._id = p.register_instrument(self._json)
            self._pipeline = p
        return self._id

    def _measure(self, value: float, attributes: _values.Attributes) -> None:
        p = _state.pipeline
        if p is None or not p.metrics:
            return
        i = self._id if self._pipeline is p else self._bind(p)
        p.measure(i, value, attributes, _current.get())

    def __repr__(self) -> str:
        return f"<polytel.{type(self).__name__} {self.name!r}>"


class Counter(_Instrument):
    """A monotonic sum: agent runs, tool calls, tokens."""

    __slots__ = ()
    _kind = "counter"

    def add(self, value: float, attributes: _values.Attributes = None) -> None:
        """Adds a non-negative increment (negative ones are dropped and counted by the core)."""
        self._measure(value, attributes)


class UpDownCounter(_Instrument):
    """A sum that goes up and down: active sessions, queue depth."""

    __slots__ = ()
    _kind = "up_down_counter"

    def add(self, value: float, attributes: _values.Attributes = None) -> None:
        self._measure(value, attributes)


class Histogram(_Instrument):
    """A distribution: durations, token counts per call."""

    __slots__ = ()
    _kind = "histogram"

    def record(self, value: float, attributes: _values.Attributes = None) -> None:
        self._measure(value, attributes)


class Gauge(_Instrument):
    """The last value recorded wins."""

    __slots__ = ()
    _kind = "gauge"

    def record(self, value: float, attributes: _values.Attributes = None) -> None:
        self._measure(value, attributes)


class _Observable(_Instrument):
    __slots__ = ("_callbacks", "_failed")

    def __init__(self, name: str, callbacks: Sequence[Callback], unit: str = "", description: str = "") -> None:
        self._callbacks = list(callbacks)
        self._failed = False
        super().__init__(name, unit, description)
        with _registry_lock:
            _observables.append(self)

    def unregister(self) -> None:
        """Stops calling the callbacks; the instrument's series end with the next collection."""
        with _registry_lock:
            if self in _observables:
                _observables.remove(self)

    def _observe(self, p: Pipeline, out: List[Dict[str, Any]]) -> None:
        i = self._bind(p)
        for cb in self._callbacks:
            try:
                result = cb()
            except Exception as e:
                if not self._failed:
                    self._failed = True
                    p._warn(
                        f"polytel: the callback of observable instrument {self.name!r} raised "
                        f"{type(e).__name__}: {e}; its observations were skipped (shown once)."
                    )
                continue
            for value, attrs in _observations(result):
                rec: Dict[str, Any] = {"instrument": i, "value": _values.number(value)}
                if attrs:
                    rec["attributes"] = _values.attributes(attrs)
                out.append(rec)


def _observations(result: CallbackResult) -> Iterable[Tuple[Any, _values.Attributes]]:
    if result is None:
        return
    if isinstance(result, Observation):
        yield result.value, result.attributes
        return
    if isinstance(result, (int, float)):
        yield result, None
        return
    for item in result:
        if isinstance(item, Observation):
            yield item.value, item.attributes
        elif isinstance(item, tuple) and len(item) == 2:
            yield item[0], item[1]
        else:
            yield item, None


class ObservableCounter(_Observable):
    """A running total reported by a callback at each collection."""

    __slots__ = ()
    _kind = "observable_counter"


class ObservableUpDownCounter(_Observable):
    """A current value that goes up and down, reported by a callback."""

    __slots__ = ()
    _kind = "observable_up_down_counter"


class ObservableGauge(_Observable):
    """A current value reported by a callback."""

    __slots__ = ()
    _kind = "observable_gauge"


def register_all(p: Pipeline) -> None:
    """Registers every live instrument with a new pipeline, in the order they were made."""
    with _registry_lock:
        alive = [i for i in (r() for r in _instruments) if i is not None]
        _instruments[:] = [weakref.ref(i) for i in alive]
    for i in alive:
        i._bind(p)


def observe(p: Pipeline) -> List[Dict[str, Any]]:
    """Runs every observable instrument's callbacks; their measurement records."""
    with _registry_lock:
        observables = list(_observables)
    out: List[Dict[str, Any]] = []
    for o in observables:
        o._observe(p, out)
    return out
