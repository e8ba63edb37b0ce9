"""Pure-Python reference for docs/IDENTITY.md: canonical bytes built value by value.

Deliberately independent of syncflow_dagster.stages: it restates the spec with the
standard library and hashes with the reference `xxhash` and `blake3` packages.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Sequence
from typing import Any

import blake3
import xxhash

US = "\x1f"
RS = "\x1e"
NUL = "\x00"

INTEGER_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "Int128", "UInt8", "UInt16", "UInt32", "UInt64", "UInt128"}
)

Typed = tuple[str, Any]
"""A value with its dtype name: "String", "Int64", "Float64", "Boolean", "Date",
"Datetime(us, UTC)", "Null", ..."""


def canonical_text(dtype: str, value: Any) -> str | None:
    """The canonical text of one value, None for null (spec: docs/IDENTITY.md)."""
    if value is None:
        return None
    if dtype == "String":
        assert isinstance(value, str)
        return value
    if dtype in INTEGER_DTYPES:
        assert isinstance(value, int) and not isinstance(value, bool)
        return str(value)
    if dtype == "Float64":
        assert isinstance(value, float) and math.isfinite(value)
        return struct.pack(">d", 0.0 if value == 0.0 else value).hex()
    if dtype == "Boolean":
        assert isinstance(value, bool)
        return "true" if value else "false"
    if dtype == "Date":
        date = dt.date.fromisoformat(value) if isinstance(value, str) else value
        assert type(date) is dt.date
        return date.isoformat()
    if dtype.startswith("Datetime("):
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        assert isinstance(stamp, dt.datetime) and stamp.tzinfo is not None
        utc = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        return utc.isoformat(timespec="microseconds") + "Z"
    raise AssertionError(f"no reference form for {dtype}")


def bk_canonical(entity: str, key: Sequence[Typed]) -> str:
    texts = [canonical_text(dtype, value) for dtype, value in key]
    assert all(text is not None for text in texts), "key values are never null"
    return US.join([entity, *(text for text in texts if text is not None)])


def data_canonical(fields: Sequence[tuple[str, str, Any]]) -> str:
    """Fields as (name, dtype, value), in any order."""
    segments = []
    for name, dtype, value in sorted(fields, key=lambda field: field[0]):
        text = canonical_text(dtype, value)
        segments.append(name + US + (NUL if text is None else text))
    return RS.join(segments)


def bk_hash(entity: str, key: Sequence[Typed]) -> str:
    return xxhash.xxh3_128_hexdigest(bk_canonical(entity, key).encode("utf-8"))


def data_hash(fields: Sequence[tuple[str, str, Any]]) -> str:
    return blake3.blake3(data_canonical(fields).encode("utf-8")).hexdigest()
