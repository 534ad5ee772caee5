"""One configured pipeline in this process. The application's threads only
append finished span, measurement and log records (dicts in the batch JSON
shape of ``wit/polytel.wit``) to a buffer; a background thread encodes each
signal's buffer with one call to the C JSON encoder, ships it to the core in one
call per batch, asks the core what to export, sends it over HTTP outside any
lock, and reports the outcome back. The core decides everything else."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

from . import _core, _facts, _values
from ._spans import Context, Link, S, Span, SpanContext, link_record

if TYPE_CHECKING:
    from ._prometheus import PrometheusServer

__version__ = "0.1.0"

_log = logging.getLogger("polytel")

_M64 = (1 << 64) - 1
#: What splitmix64 adds to its state per value drawn (``wit/polytel.wit``).
_GAMMA = 0x9E3779B97F4A7C15
_SIGNALS = ("traces", "metrics", "logs")
# Seconds the worker sleeps at most between polls when nothing wakes it.
_LONGEST_WAIT = 3600.0

#: Unix nanoseconds for every timestamp.
Clock = Callable[[], int]


@dataclass(frozen=True)
class ShutdownReport:
    """What shutdown could not deliver."""

    #: Items still queued or pending at the deadline, now dropped and counted.
    abandoned: int
    #: Whether the final flush finished before the deadline.
    flushed: bool

    def __bool__(self) -> bool:
        return self.flushed and self.abandoned == 0


def random_seed() -> int:
    return int.from_bytes(os.urandom(8), "little")


def _read_config_file(options: Mapping[str, Any], env: Mapping[str, str]) -> Optional[Dict[str, str]]:
    path = options.get("config_file") or env.get("POLYTEL_CONFIG")
    if not isinstance(path, str) or not path.strip():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _core.ConfigurationError(
            f"The config file {path} could not be read ({reason}); fix the path in the option config_file "
            "or POLYTEL_CONFIG, or remove it."
        ) from None
    return {"path": path, "text": text}


class _Core:
    """The core instance and what is needed to rebuild it after a trap."""

    def __init__(self, config_json: str, memory_limit: int, lock: threading.Lock) -> None:
        self.config_json = config_json
        self.memory_limit = memory_limit
        #: The pipeline's lock for calls into the core.
        self.lock = lock
        self.instance = _core.Instance(config_json, memory_limit, lock)
        #: Items lost because the core trapped while holding them.
        self.lost_to_traps = 0
        #: Every instrument registration, in order: a fresh instance gets them
        #: again, so instrument ids stay valid.
        self.registrations: List[str] = []

    def call(self, lost_if_trap: int, f: Callable[[_core.Instance], Any]) -> Any:
        """Runs ``f`` on the instance; if the core traps, instantiates it afresh
        so later calls work, counts what was lost, and raises CoreTrapped."""
        try:
            return f(self.instance)
        except Exception as e:
            if not _core.is_trap(e):
                raise
            self.lost_to_traps += lost_if_trap
            _log.warning(
                "polytel: the telemetry core failed (%s); starting it afresh. Queued telemetry was lost.",
                str(e).splitlines()[-1] if str(e) else type(e).__name__,
            )
            self.renew()
            raise _core.CoreTrapped(str(e)) from None

    def renew(self, config_json: Optional[str] = None) -> None:
        if config_json is not None:
            self.config_json = config_json
        old, self.instance = self.instance, _core.Instance(self.config_json, self.memory_limit, self.lock)
        # The old instance is trapped (or, after fork, the parent's copy): free it now.
        try:
            old.close()
        except Exception:
            pass
        for r in self.registrations:
            self.instance.register_instrument(r)


class Pipeline:
    """A configured pipeline: the core instance, the buffers and the export worker."""

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        env: Optional[Mapping[str, str]] = None,
        seed: Optional[int] = None,
        clock: Optional[Clock] = None,
        host_facts: Optional[Mapping[str, Any]] = None,
        core_memory_limit: Optional[int] = None,
        observe: Optional[Callable[[Pipeline], List[Dict[str, Any]]]] = None,
    ) -> None:
        self._options = {k: v for k, v in options.items() if v is not None}
        self._env = dict(os.environ if env is None else env)
        self._facts_override = None if host_facts is None else dict(host_facts)
        self._file = _read_config_file(self._options, self._env)
        seed = random_seed() if seed is None else seed & _M64
        self._core_lock = threading.Lock()
        core = _Core(self._config_json(seed), core_memory_limit or _core.DEFAULT_MEMORY_LIMIT, self._core_lock)
        plan = json.loads(core.instance.plan())
        self._apply_plan(plan)
        self._core = core
        self._ids = itertools.count(seed + _GAMMA, _GAMMA)
        #: Unix nanoseconds; the system clock unless a test fixes it.
        self.now: Clock = clock or time.time_ns
        self._observe = observe
        self._sender: Any = None
        self._init_buffers()
        self._prometheus: Optional[PrometheusServer] = None
        if self.prometheus_listen:
            from ._prometheus import PrometheusServer

            self._prometheus = PrometheusServer(self.prometheus_listen, self)
        self._worker = self._start_worker()
        _live.add(self)

    def _config_json(self, seed: int) -> str:
        if self._facts_override is not None:
            host: Dict[str, Any] = dict(self._facts_override)
            host.setdefault("sdk_language", "python")
        else:
            host = _facts.gather()
            host["sdk_language"] = "python"
        # This host makes no gRPC calls: the core sends it OTLP/HTTP only.
        host["grpc"] = False
        config: Dict[str, Any] = {"options": self._options, "env": self._env, "seed": str(seed), "host": host}
        if self._file is not None:
            config["file"] = self._file
        try:
            return json.dumps(config, separators=(",", ":"), default=_json_default)
        except (TypeError, ValueError) as e:
            raise _core.ConfigurationError(
                f"An option could not be passed to the core ({e}); give options as strings, numbers, "
                "booleans, lists or dicts of them."
            ) from None

    def _apply_plan(self, plan: Dict[str, Any]) -> None:
        self.disabled = bool(plan["disabled"])
        sampler = plan["sampler"]
        self._parent_based = bool(sampler["parent_based"])
        self._root_bound = int(sampler["root_bound"])
        self._max_batch = max(1, int(plan["max_batch"]))
        self._max_queue = max(1, int(plan["max_queue"]))
        self.traces = bool(plan["traces"])
        self.metrics = bool(plan["metrics"])
        self.logs = bool(plan["logs"])
        self.prometheus_listen: Optional[str] = plan.get("prometheus")
        #: Whether GenAI operations keep their input and output (opted in).
        self.genai_capture = bool(plan.get("genai_capture", False))

    def _init_buffers(self) -> None:
        self._lock = threading.Lock()
        # Wakes the worker (a full batch, a flush, a stop) and flushers (a flush done).
        self._wake = threading.Condition(self._lock)
        self._flushed = threading.Condition(self._lock)
        self._spans: List[Dict[str, Any]] = []
        self._metrics: List[Dict[str, Any]] = []
        self._logs: List[Dict[str, Any]] = []
        #: Records refused because their signal's buffer was full.
        self._dropped = [0, 0, 0]
        self._flush_asked = 0
        self._flush_done = 0
        # The flush being worked on: done once the core holds nothing more
        # to send (or the worker stops; flushers time out on their own).
        self._flushing: Optional[int] = None
        self._stop = False
        # The shipper moved a full batch into the core: the worker should poll.
        self._shipped = False
        self._next_poll: Optional[float] = None
        self._warned: set[str] = set()

    def _start_worker(self) -> Optional[threading.Thread]:
        if self.disabled:
            # Nothing is ever recorded or exported: no thread, no polling.
            return None
        threading.Thread(target=self._ship_full_batches, name="polytel-ship", daemon=True).start()
        t = threading.Thread(target=self._run, name="polytel-export", daemon=True)
        t.start()
        return t

    def _ship_full_batches(self) -> None:
        """Moves full batches into the core while the export worker is busy
        (say, on a request that hangs): the core's bounded queues take them,
        and aggregate measurements in constant memory, instead of the buffer
        overflowing. Ends when the pipeline stops."""
        while True:
            with self._lock:
                while not self._stop and max(len(self._spans), len(self._metrics), len(self._logs)) < self._max_batch:
                    self._wake.wait()
                if self._stop:
                    return
            with self._core_lock:
                try:
                    self._ship_all()
                except _core.CoreTrapped:
                    pass
            with self._lock:
                self._shipped = True
                self._wake.notify_all()

    # -- hot path -------------------------------------------------------------

    def _draw(self) -> int:
        """The next splitmix64 value (``itertools.count`` steps the state
        atomically under the GIL, so threads never draw the same state)."""
        z: int = next(self._ids) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def start_span(
        self,
        name: str,
        attributes: _values.Attributes,
        kind: int,
        parent: Union[Span, SpanContext, None],
        links: Optional[Iterable[Union[Link, SpanContext, Span]]],
        baggage: Tuple[Tuple[str, str], ...],
        start_time: Optional[int],
        cls: Type[S] = Span,  # type: ignore[assignment]
        always: bool = False,
    ) -> S:
        if parent is None:
            while True:
                hi = self._draw()
                lo = self._draw()
                if hi | lo:
                    break
            trace_id = f"{hi:016x}{lo:016x}"
            trace_state = ""
        else:
            trace_id = parent.trace_id
            trace_state = parent.trace_state
        while True:
            sid = self._draw()
            if sid:
                break
        if parent is not None and self._parent_based:
            sampled = parent.sampled
        elif parent is None:
            sampled = not self.disabled and (lo >> 1) < self._root_bound
        else:
            sampled = not self.disabled and (int(trace_id[16:], 16) >> 1) < self._root_bound
        # A GenAI operation (always) is recorded sampled or not: the core
        # derives metrics and stats from every one and exports sampled ones.
        recording = (sampled and self.traces) or (always and not self.disabled)
        span = cls(self, trace_id, f"{sid:016x}", sampled, trace_state, baggage, recording)
        if recording:
            span._name = name
            span._kind = kind
            if parent is None:
                span._parent_id = None
            else:
                span._parent_id = parent.span_id
                span._parent_remote = parent.remote
            span._start = self.now() if start_time is None else start_time
            span._attributes = _values.attributes(attributes) if attributes else {}
            span._events = []
            span._links = [link_record(link) for link in links] if links else None
            span._status = 0
        return span

    def enqueue_span(self, record: Dict[str, Any]) -> None:
        with self._lock:
            buf = self._spans
            if len(buf) >= self._max_queue or self._stop:
                self._dropped[0] += 1
                return
            buf.append(record)
            # Once per batch: the worker checks the buffer's length itself
            # before it sleeps again.
            if len(buf) == self._max_batch:
                self._wake.notify_all()

    def _enqueue(self, index: int, buf: List[Dict[str, Any]], record: Dict[str, Any]) -> None:
        with self._lock:
            if len(buf) >= self._max_queue or self._stop:
                self._dropped[index] += 1
                return
            buf.append(record)
            if len(buf) == self._max_batch:
                self._wake.notify_all()

    def measure(self, instrument: int, value: Any, attributes: _values.Attributes, span: Optional[Span]) -> None:
        """A measurement; inside ``span`` it carries the span's ids (an exemplar candidate)."""
        rec: Dict[str, Any] = {"instrument": instrument, "value": _values.number(value)}
        if attributes:
            rec["attributes"] = _values.attributes(attributes)
        if span is not None:
            rec["time"] = self.now()
            rec["trace_id"] = span.trace_id
            rec["span_id"] = span.span_id
            rec["sampled"] = span.sampled
        self._enqueue(1, self._metrics, rec)

    def emit_log(self, record: Dict[str, Any], span: Optional[Span], time_ns: Optional[int]) -> None:
        """Completes a log record (times, span) and buffers it."""
        now = self.now()
        record["time"] = now if time_ns is None else time_ns
        record["observed"] = now
        if span is not None:
            record["trace_id"] = span.trace_id
            record["span_id"] = span.span_id
            record["flags"] = 1 if span.sampled else 0
        self._enqueue(2, self._logs, record)

    # -- calls into the core --------------------------------------------------

    def register_instrument(self, instrument_json: str) -> int:
        with self._core_lock:
            try:
                i: int = self._core.call(0, lambda c: c.register_instrument(instrument_json))
            except _core.CoreTrapped:
                # An instrument the core cannot register: its measurements are
                # dropped and counted as unknown.
                return 0xFFFFFFFF
            self._core.registrations.append(instrument_json)
            return i

    def describe(self) -> Dict[str, Any]:
        with self._core_lock:
            return dict(json.loads(self._core.call(0, lambda c: c.describe())))

    def stats(self) -> Dict[str, Any]:
        with self._core_lock:
            # What ended before this call is counted (GenAI operations' summary too).
            try:
                self._ship_all()
            except _core.CoreTrapped:
                pass
            text = self._core.call(0, lambda c: c.stats())
            lost = self._core.lost_to_traps
        stats: Dict[str, Any] = json.loads(text)
        with self._lock:
            spans, metrics, logs = self._dropped
            buffered = len(self._spans) + len(self._metrics) + len(self._logs)
        stats["host"] = {
            "buffered": buffered,
            "buffer_dropped": {"spans": spans, "metrics": metrics, "logs": logs},
            "lost_to_traps": lost,
        }
        return stats

    def extract(self, headers: Any) -> Context:
        items = headers.items() if hasattr(headers, "items") else headers
        lowered: Dict[str, str] = {}
        for k, v in items:
            if isinstance(k, str):
                lowered[k.lower()] = v if isinstance(v, str) else str(v)
        text = json.dumps(lowered, separators=(",", ":"))
        with self._core_lock:
            got = json.loads(self._core.call(0, lambda c: c.extract(text)))
        baggage = tuple((str(k), str(v)) for k, v in got.get("baggage") or ())
        trace_id, span_id = got.get("trace_id") or "", got.get("span_id") or ""
        if not trace_id or not span_id:
            return Context(None, baggage)
        ctx = SpanContext(trace_id, span_id, bool(int(got.get("flags") or 0) & 1), True, got.get("trace_state") or "")
        return Context(ctx, baggage)

    def inject(self, ctx: Union[Span, SpanContext], baggage: Iterable[Tuple[str, str]]) -> Dict[str, str]:
        wire = {
            "trace_id": ctx.trace_id,
            "span_id": ctx.span_id,
            "flags": 1 if ctx.sampled else 0,
            "trace_state": ctx.trace_state,
            "baggage": [[k, v] for k, v in baggage],
        }
        text = json.dumps(wire, separators=(",", ":"))
        with self._core_lock:
            got = json.loads(self._core.call(0, lambda c: c.inject(text)))
        return {str(k): str(v) for k, v in got.items()}

    def scrape(self, openmetrics: bool) -> Tuple[str, str]:
        """What a Prometheus scrape reads: current metrics as text."""
        observed = self._observe(self) if self._observe else []
        with self._core_lock:
            # GenAI operations' metrics come from their spans: everything buffered goes first.
            self._ship_all()
            self._ship_one("metrics", observed)
            result: Tuple[str, str] = self._core.call(0, lambda c: c.render_metrics(openmetrics, self.now()))
            return result

    # -- flush and shutdown ---------------------------------------------------

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Exports everything recorded so far; returns whether that finished in time."""
        if self._worker is None:
            return True
        if threading.current_thread() is self._worker:
            # From an observable callback: the worker cannot wait for itself.
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._stop:
                return True
            self._flush_asked += 1
            ticket = self._flush_asked
            self._wake.notify_all()
            while self._flush_done < ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flushed.wait(left)
        return True

    def shutdown(self, timeout: float = 5.0) -> ShutdownReport:
        """Flushes within ``timeout``, then stops the worker and drops (counting)
        whatever could not be delivered. Safe to call more than once."""
        flushed = self.force_flush(timeout)
        with self._lock:
            if self._stop:
                return ShutdownReport(0, flushed)
            self._stop = True
            self._wake.notify_all()
        if self._prometheus is not None:
            self._prometheus.close()
            self._prometheus = None
        with self._core_lock:
            try:
                abandoned = int(self._core.call(0, lambda c: c.abandon()))
            except _core.CoreTrapped:
                abandoned = 0
        with self._lock:
            left = len(self._spans) + len(self._metrics) + len(self._logs)
            self._spans, self._metrics, self._logs = [], [], []
        # The worker exits at its next wake-up; if it is inside a hung request
        # it finishes on its own once the request times out.
        if flushed and self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=max(0.1, timeout))
        _live.discard(self)
        return ShutdownReport(abandoned + left, flushed)

    @property
    def prometheus_address(self) -> Optional[Tuple[str, int]]:
        return self._prometheus.address if self._prometheus is not None else None

    # -- the export worker ----------------------------------------------------

    def _run(self) -> None:
        from ._http import Sender

        self._sender = Sender(f"OTel-OTLP-Exporter-Python/polytel-{__version__}")
        while True:
            new_flush, stop = self._wait()
            # Only a flush's first poll asks for one: it sends every queued
            # item and collects metrics; later polls settle the retries.
            ticket = new_flush if new_flush is not None else self._flushing
            delivered, outstanding = 0, 1
            try:
                delivered, outstanding = self._cycle(new_flush is not None)
            except Exception as e:  # the worker must survive anything
                self._warn(f"polytel: the export worker failed ({type(e).__name__}: {e}); it carries on.")
                self._next_poll = time.monotonic() + 1.0
            if ticket is not None:
                if stop or (delivered == 0 and outstanding == 0):
                    self._flushing = None
                    with self._lock:
                        self._flush_done = max(self._flush_done, ticket)
                        self._flushed.notify_all()
                else:
                    self._flushing = ticket
            # After delivering, poll again at once: the outcomes may have made
            # something due now (a split's halves, a Retry-After: 0), and the
            # next poll time was computed before them.
            if delivered > 0:
                self._next_poll = time.monotonic()
            if stop:
                return

    def _wait(self) -> Tuple[Optional[int], bool]:
        """Sleeps until there is a batch, a flush, a stop or the core's next poll time."""
        with self._lock:
            while True:
                # A flush already being worked on waits for its retries' times.
                flush = self._flush_asked > (self._flush_done if self._flushing is None else self._flushing)
                now = time.monotonic()
                due = self._next_poll is None or now >= self._next_poll
                longest = max(len(self._spans), len(self._metrics), len(self._logs))
                if self._stop or flush or due or self._shipped or longest >= self._max_batch:
                    self._shipped = False
                    return (self._flush_asked if flush else None), self._stop
                left = 1.0 if self._next_poll is None else self._next_poll - now
                # The core may say "never" (u64::MAX): records, flushes and
                # stops wake the worker anyway, and a timed wait must fit time_t.
                self._wake.wait(min(left, _LONGEST_WAIT))

    def _ship_one(self, signal: str, records: List[Dict[str, Any]]) -> None:
        """Hands one signal's records to the core in one call (core lock held)."""
        if not records:
            return
        try:
            batch = _values.ENCODER.encode(records)
        except (TypeError, ValueError, RecursionError):
            # Some record cannot be written as JSON: keep the others.
            good = []
            for r in records:
                try:
                    good.append(_values.ENCODER.encode(r))
                except (TypeError, ValueError, RecursionError):
                    self._warn_once(f"polytel: a {signal} record could not be encoded and was dropped.")
            batch = "[" + ",".join(good) + "]"
        self._core.call(len(records), lambda c: c.record(signal, batch))

    def _ship_all(self) -> None:
        """Hands every buffered record to the core (core lock held). Taking the
        buffers under the core lock means that once a caller holds it, every
        record buffered before is in the core (what ``stats`` relies on)."""
        with self._lock:
            taken = (self._spans, self._metrics, self._logs)
            self._spans, self._metrics, self._logs = [], [], []
        for signal, records in zip(_SIGNALS, taken):
            self._ship_one(signal, records)

    def _cycle(self, flush: bool) -> Tuple[int, int]:
        """Ships, polls and delivers; returns the exports delivered and what the
        core's last poll said is outstanding."""
        with self._core_lock:
            try:
                self._ship_all()
                result: _core.PollResult = self._core.call(0, lambda c: c.poll(self.now(), flush))
            except _core.CoreTrapped:
                self._next_poll = time.monotonic() + 1.0
                return 0, 1
        delivered = 0
        # A collection is due: observe, then the next poll collects. Once at
        # most, so a core that keeps asking cannot hold the worker.
        for round in range(2):
            for w in result.warnings:
                self._warn(w if w.startswith("polytel") else f"polytel: {w}")
            for export in result.exports:
                self._deliver(export)
                delivered += 1
            if not result.observe or round == 1:
                break
            observed = self._observe(self) if self._observe else []
            with self._core_lock:
                try:
                    with self._lock:
                        buffered, self._metrics = self._metrics, []
                    self._ship_one("metrics", buffered)
                    self._ship_one("metrics", observed)
                    result = self._core.call(0, lambda c: c.poll(self.now(), flush))
                except _core.CoreTrapped:
                    break
        # The core's times are the configured clock's, so the wait is measured on it too.
        wait_ns = max(0, result.next_poll - self.now())
        self._next_poll = time.monotonic() + wait_ns / 1e9
        return delivered, result.outstanding

    def _deliver(self, export: _core.Export) -> None:
        if export.kind == "stdout":
            try:
                sys.stdout.write(export.body)
                sys.stdout.flush()
            except (OSError, ValueError, AttributeError):
                pass
            return
        if export.kind == "http":
            try:
                outcome = self._sender.send(export)
            except Exception as e:  # whatever happened, the core must hear how it ended
                outcome = _core.FailedOutcome(f"{type(e).__name__}: {e}")
        else:
            outcome = _core.FailedOutcome("this host cannot make gRPC calls; use protocol http/protobuf or http/json")
        with self._core_lock:
            try:
                self._core.call(export.items, lambda c: c.report(export.id, outcome, self.now()))
            except _core.CoreTrapped:
                pass

    def _warn(self, text: str) -> None:
        _log.warning("%s", text)

    def _warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            self._warn(text)

    # -- fork -----------------------------------------------------------------

    def _before_fork(self) -> None:
        self._core_lock.acquire()
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()
        self._core_lock.release()

    def _after_fork_in_child(self) -> None:
        """The child gets a fresh core instance (the copied one holds the
        parent's queued telemetry, which the parent sends), empty buffers, new
        ids and its own worker: nothing is sent twice."""
        stopped = self._stop
        self._core_lock = threading.Lock()
        self._core.lock = self._core_lock
        self._init_buffers()
        self._prometheus = None  # the parent serves /metrics
        if stopped:
            self._stop = True
            return
        seed = random_seed()
        self._ids = itertools.count(seed + _GAMMA, _GAMMA)
        try:
            self._core.renew(self._config_json(seed))
            self._core.lost_to_traps = 0
        except Exception as e:  # the child must run even without telemetry
            self._warn(f"polytel: telemetry could not be restarted in the forked process ({e}).")
            self._stop = True
            return
        self._worker = self._start_worker()


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"{type(o).__name__} is not a JSON value")


#: Pipelines whose locks must be held across fork().
_live: weakref.WeakSet[Pipeline] = weakref.WeakSet()


def _before_fork() -> None:
    for p in list(_live):
        p._before_fork()


def _after_fork_in_parent() -> None:
    for p in list(_live):
        p._after_fork_in_parent()


def _after_fork_in_child() -> None:
    for p in list(_live):
        p._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
