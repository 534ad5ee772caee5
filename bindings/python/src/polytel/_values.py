"""Python values as the batch JSON of ``wit/polytel.wit`` writes attribute values.

A string, boolean or integer is itself; a finite float is a JSON number with a
fraction or exponent (the core reads it as a double); a float that JSON cannot
hold becomes ``{"double": "NaN" | "Infinity" | "-Infinity"}``; bytes become
``{"bytes": "<base64>"}``; a mapping becomes ``{"map": {...}}``; a list, tuple
or set becomes an array. The conversion happens when a value is set, so the
export worker can encode whole batches with one call to the C JSON encoder.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any, Dict, Optional, Union

#: An attribute value as the application passes it.
AttributeValue = Union[str, bool, int, float, bytes, "list[Any]", "tuple[Any, ...]", "Mapping[str, Any]", None]
#: Attributes as the application passes them.
Attributes = Optional[Mapping[str, Any]]

_INF = float("inf")
_NAN = {"double": "NaN"}
_POS_INF = {"double": "Infinity"}
_NEG_INF = {"double": "-Infinity"}
# Arrays and maps nest at most this deep here; the core keeps fewer levels
# still (and counts what it cuts), this only stops a cyclic structure.
_MAX_DEPTH = 32

# The encoder the export worker uses for whole batches: compact, never NaN
# (a bad value raises instead of producing text the core cannot read), and
# non-string keys the C encoder cannot write are skipped rather than failing
# the batch.
ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, skipkeys=True, check_circular=False)


def value(v: Any) -> Any:
    """``v`` in batch-JSON form (see the module documentation)."""
    t = type(v)
    if t is str or t is int or t is bool:
        return v
    if t is float:
        if -_INF < v < _INF:
            return v
        return _special(v)
    return _slow(v, 0)


def _special(v: float) -> Dict[str, str]:
    if math.isnan(v):
        return _NAN
    return _POS_INF if v > 0 else _NEG_INF


def _slow(v: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return _text(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        f = float(v)
        return f if -_INF < f < _INF else _special(f)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, Mapping):
        return {"map": {_key(k): _slow(x, depth + 1) for k, x in v.items()}}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_slow(x, depth + 1) for x in v]
    if v is None:
        # The core drops a null attribute and counts it as invalid.
        return None
    return _text(v)


def _key(k: Any) -> str:
    return k if type(k) is str else _text(k)


def _text(v: Any) -> str:
    try:
        return str(v)
    except Exception:  # a __str__ that fails must not fail the caller
        return f"<{type(v).__name__}>"


def attributes(attrs: Attributes) -> Dict[str, Any]:
    """A new dict of ``attrs`` in batch-JSON form."""
    if not attrs:
        return {}
    out: Dict[str, Any] = {}
    for k, v in attrs.items():
        t = type(v)
        if t is str or t is int or t is bool or (t is float and -_INF < v < _INF):
            out[k if type(k) is str else _key(k)] = v
        else:
            out[k if type(k) is str else _key(k)] = value(v)
    return out


def number(v: float) -> Any:
    """A measurement value: a JSON number, or "NaN", "Infinity", "-Infinity"."""
    t = type(v)
    if t is int:
        return v
    if t is float:
        if -_INF < v < _INF:
            return v
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    try:
        f = float(v)
    except (TypeError, ValueError):
        # Not a number: the core drops the measurement and counts it.
        return _text(v)
    return number(f)
