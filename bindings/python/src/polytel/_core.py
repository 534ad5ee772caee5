"""The core component on wasmtime-py: one engine and one compiled component per
process (the compiled code cached on disk, so start-up after the first run is a
deserialisation), and one instance per pipeline.

Only strings cross the boundary on the hot path (see ``wit/polytel.wit``):
wasmtime-py converts component values element by element in Python.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    import wasmtime
    from wasmtime import component as wc

COMPONENT_PATH = Path(__file__).with_name("polytel.wasm")
_INTERFACE = "polytel:telemetry/core@0.1.0"
# Bumped when the engine configuration below changes: it is part of the cache key.
_ENGINE_CONFIG = "default-1"
#: Bytes the core's memory may grow to unless told otherwise: a runaway batch
#: then traps the core (which is recovered from) instead of taking the
#: application's memory.
DEFAULT_MEMORY_LIMIT = 512 << 20

_FUNCS = {
    "create": "[static]pipeline.create",
    "plan": "[method]pipeline.plan",
    "describe": "[method]pipeline.describe",
    "record_spans": "[method]pipeline.record-spans",
    "register_instrument": "[method]pipeline.register-instrument",
    "record_metrics": "[method]pipeline.record-metrics",
    "record_logs": "[method]pipeline.record-logs",
    "render_metrics": "[method]pipeline.render-metrics",
    "poll": "[method]pipeline.poll",
    "report": "[method]pipeline.report",
    "abandon": "[method]pipeline.abandon",
    "stats": "[method]pipeline.stats",
    "extract": "[method]pipeline.extract",
    "inject": "[method]pipeline.inject",
}


class ComponentMissingError(RuntimeError):
    """The package was installed without its core component."""


class ConfigurationError(ValueError):
    """The core refused the configuration; the message says what and how to fix it."""


class CoreTrapped(RuntimeError):
    """The core trapped; a fresh instance has replaced it (or could not be made)."""


@dataclass(frozen=True)
class Export:
    """One export the core handed over (``export`` in the WIT)."""

    id: int
    signal: str
    #: "http", "stdout" or "grpc" (never handed to this host: it says grpc: false).
    kind: str
    url: str
    headers: Tuple[Tuple[str, str], ...]
    #: None: no limit.
    timeout: Optional[float]
    body: str
    items: int

    def __repr__(self) -> str:  # header values may be credentials
        names = ", ".join(name for name, _ in self.headers)
        return f"Export(id={self.id}, signal={self.signal}, kind={self.kind}, url={self.url!r}, headers=[{names}])"


@dataclass(frozen=True)
class PollResult:
    exports: List[Export]
    warnings: List[str]
    next_poll: int
    observe: bool
    #: Items queued or in unsettled exports (see ``poll`` in the WIT).
    outstanding: int


@dataclass(frozen=True)
class HttpOutcome:
    """An HTTP response, as far as the core needs it."""

    status: int
    retry_after: Optional[str]
    #: base64 of the response body.
    body: str
    #: The response headers the core reads (location, x-ms-qps-*), names lower-case.
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FailedOutcome:
    """No response: refused, reset, DNS or TLS failure."""

    reason: str


Outcome = Any  # HttpOutcome | FailedOutcome


class _Loaded:
    def __init__(self) -> None:
        import wasmtime
        from wasmtime import component as wc

        try:
            data = COMPONENT_PATH.read_bytes()
        except FileNotFoundError:
            raise ComponentMissingError(
                f"polytel's core component is missing from the installed package ({COMPONENT_PATH}); "
                "reinstall polytel, or when installing from a clone run bindings/python/build.sh before "
                "`pip install ./bindings/python`."
            ) from None
        self.engine = wasmtime.Engine()
        self.component = _compile(self.engine, data)
        self.linker = wc.Linker(self.engine)
        iface = self.component.get_export_index(_INTERFACE)
        if iface is None:
            raise ComponentMissingError(f"{COMPONENT_PATH} does not export {_INTERFACE}; rebuild the package.")
        self.indexes: Dict[str, Any] = {}
        for short, name in _FUNCS.items():
            index = self.component.get_export_index(name, iface)
            if index is None:
                raise ComponentMissingError(f"{COMPONENT_PATH} has no {name}; rebuild the package.")
            self.indexes[short] = index


_loaded: Optional[_Loaded] = None
_load_lock = threading.Lock()
_instances: weakref.WeakSet[Instance] = weakref.WeakSet()


def close_all() -> None:
    """Frees every instance and the compiled component now, while wasmtime can
    still free them (at interpreter exit its module is torn down first, and
    its finalisers would fail noisily)."""
    global _loaded
    for inst in list(_instances):
        # An instance still in use (a worker stuck past the shutdown deadline)
        # is left alone: freeing its store under a running call would crash.
        if inst.lock.acquire(timeout=0.5):
            try:
                inst.close()
            finally:
                inst.lock.release()
    loaded, _loaded = _loaded, None
    if loaded is not None:
        for index in loaded.indexes.values():
            index.close()
        loaded.linker.close()
        loaded.component.close()
        loaded.engine.close()


def _load() -> _Loaded:
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                _loaded = _Loaded()
    return _loaded


def cache_dir() -> Optional[Path]:
    """Where compiled code is cached: $POLYTEL_CACHE, else the user's cache directory."""
    explicit = os.environ.get("POLYTEL_CACHE")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) / "polytel" / "Cache" if base else None
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "polytel"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "polytel"
    try:
        return Path.home() / ".cache" / "polytel"
    except RuntimeError:  # no home directory
        return None


def _wasmtime_version() -> str:
    import wasmtime

    # The distribution's metadata folder sits beside the package; reading its
    # name is much cheaper than importing importlib.metadata.
    site = Path(wasmtime.__file__).resolve().parent.parent
    try:
        with os.scandir(site) as entries:
            for e in entries:
                if e.name.startswith("wasmtime-") and e.name.endswith(".dist-info"):
                    return e.name[len("wasmtime-") : -len(".dist-info")]
    except OSError:
        pass
    from importlib import metadata

    try:
        return metadata.version("wasmtime")
    except metadata.PackageNotFoundError:
        return "unknown"


def cache_path(data: bytes) -> Optional[Path]:
    """The cache file for this component compiled by this wasmtime."""
    import hashlib

    d = cache_dir()
    if d is None:
        return None
    digest = hashlib.sha256(data).hexdigest()[:24]
    return d / f"python-core-{digest}-wasmtime-{_wasmtime_version()}-{_ENGINE_CONFIG}.cwasm"


def _compile(engine: wasmtime.Engine, data: bytes) -> wc.Component:
    import tempfile

    from wasmtime import component as wc

    path = cache_path(data)
    if path is not None and path.is_file():
        try:
            # The file was written by Component.serialize below for this exact
            # component, wasmtime version and engine configuration (all in its
            # name), in a per-user directory; a damaged or incompatible file
            # fails to deserialise and is rebuilt.
            return wc.Component.deserialize_file(engine, str(path))
        except Exception:
            pass
    component = wc.Component(engine, data)
    if path is not None:
        # The cache is an optimisation: failing to write it is not an error.
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(component.serialize())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except Exception:
            pass
    return component


class Instance:
    """One instance of the core holding one pipeline. Not thread-safe: callers
    serialise access (the pipeline keeps it behind a lock)."""

    def __init__(
        self, config_json: str, memory_limit: int = DEFAULT_MEMORY_LIMIT, lock: Optional[threading.Lock] = None
    ) -> None:
        import wasmtime

        #: Held by whoever calls into this instance.
        self.lock = lock or threading.Lock()
        loaded = _load()
        self._store = wasmtime.Store(loaded.engine)
        self._store.set_limits(memory_size=memory_limit)
        instance = loaded.linker.instantiate(self._store, loaded.component)
        f: Dict[str, Any] = {short: instance.get_func(self._store, index) for short, index in loaded.indexes.items()}
        created = f["create"](self._store, config_json)
        if isinstance(created, str):
            raise ConfigurationError(created)
        self._pipeline = created
        self._plan = f["plan"]
        self._describe = f["describe"]
        self._record = {"traces": f["record_spans"], "metrics": f["record_metrics"], "logs": f["record_logs"]}
        self._register = f["register_instrument"]
        self._render = f["render_metrics"]
        self._poll = f["poll"]
        self._report = f["report"]
        self._abandon = f["abandon"]
        self._stats = f["stats"]
        self._extract = f["extract"]
        self._inject = f["inject"]
        _instances.add(self)

    def close(self) -> None:
        """Frees the instance; later calls fail (as after a trap)."""
        _instances.discard(self)
        self._pipeline.close()
        self._store.close()

    def plan(self) -> str:
        return str(self._plan(self._store, self._pipeline))

    def describe(self) -> str:
        return str(self._describe(self._store, self._pipeline))

    def record(self, signal: str, batch: str) -> None:
        self._record[signal](self._store, self._pipeline, batch)

    def register_instrument(self, instrument_json: str) -> int:
        return int(self._register(self._store, self._pipeline, instrument_json))

    def render_metrics(self, openmetrics: bool, now: int) -> Tuple[str, str]:
        r = self._render(self._store, self._pipeline, "openmetrics" if openmetrics else "prometheus", now)
        return getattr(r, "content-type"), r.body

    def poll(self, now: int, flush: bool) -> PollResult:
        r = self._poll(self._store, self._pipeline, now, flush)
        exports = []
        for e in r.exports:
            dest = e.destination
            if dest.tag == "http":
                req = dest.payload
                ms = getattr(req, "timeout-ms")
                exports.append(
                    Export(
                        id=e.id,
                        signal=e.signal,
                        kind="http",
                        url=req.url,
                        headers=tuple(req.headers),
                        timeout=None if ms == 0xFFFFFFFF else ms / 1000.0,
                        body=e.body,
                        items=e.items,
                    )
                )
            else:
                exports.append(
                    Export(
                        id=e.id,
                        signal=e.signal,
                        kind=dest.tag,
                        url="",
                        headers=(),
                        timeout=None,
                        body=e.body,
                        items=e.items,
                    )
                )
        return PollResult(exports, list(r.warnings), getattr(r, "next-poll"), bool(r.observe), int(r.outstanding))

    def report(self, export_id: int, outcome: Outcome, now: int) -> None:
        from wasmtime.component import Record, Variant

        if isinstance(outcome, HttpOutcome):
            rec = Record()
            # Field names as the WIT spells them (one has a hyphen).
            for name, v in (
                ("status", outcome.status),
                ("retry-after", outcome.retry_after),
                ("body", outcome.body),
                ("headers", list(outcome.headers)),
            ):
                setattr(rec, name, v)
            value = Variant("response", rec)
        else:
            value = Variant("failed", outcome.reason)
        self._report(self._store, self._pipeline, export_id, value, now)

    def abandon(self) -> int:
        return int(self._abandon(self._store, self._pipeline))

    def stats(self) -> str:
        return str(self._stats(self._store, self._pipeline))

    def extract(self, headers_json: str) -> str:
        return str(self._extract(self._store, self._pipeline, headers_json))

    def inject(self, context_json: str) -> str:
        return str(self._inject(self._store, self._pipeline, context_json))


def is_trap(e: BaseException) -> bool:
    """Whether ``e`` came out of the core (a trap or a wasmtime failure), as
    opposed to a Python error before the call."""
    try:
        import wasmtime
    except ImportError:  # pragma: no cover - wasmtime is a dependency
        return False
    return isinstance(e, (wasmtime.WasmtimeError, wasmtime.Trap))
