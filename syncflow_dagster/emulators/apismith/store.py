"""Serving views of one entity: rows sorted by (rowversion, key) and keys sorted by key.

A view is immutable: a mutation only marks the store stale, and the next read builds new
views (one sort) and swaps them in. A page is a slice of pre-rendered lines joined into
one byte string; finding where a page starts is a binary search.
"""

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

KeyTuple = tuple[str | int, ...]
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class RecordView:
    """Rows in (rowversion, key) order: rowversions, raw key columns, NDJSON lines.

    ``buffer`` holds all lines joined by newlines, ``offsets[i]`` is where line ``i``
    starts in it: a page of NDJSON is one zero-copy slice. ``lines`` is the text of
    each (a sandboxed raw line that is not UTF-8 shows U+FFFD there; ``buffer`` has
    its exact bytes).
    """

    rv: pl.Series
    keys: tuple[pl.Series, ...]
    lines: pl.Series
    buffer: bytes
    offsets: pl.Series

    @property
    def size(self) -> int:
        """How many rows."""
        return self.rv.len()


@dataclass(frozen=True)
class KeyView:
    """Distinct raw keys in key order, with each key as a JSON array."""

    keys: tuple[pl.Series, ...]
    json: pl.Series

    @property
    def size(self) -> int:
        """How many distinct keys."""
        return self.json.len()


def _with_raw_lines(
    lines: pl.Series, rids: pl.Series, raw_lines: Mapping[int, bytes]
) -> tuple[pl.Series, bytes, pl.Series]:
    """Lines, buffer and offsets when some rows serve raw lines (sandbox; not the hot path)."""
    served = [
        raw_lines.get(rid, text.encode())
        for rid, text in zip(rids.to_list(), lines.to_list(), strict=True)
    ]
    sizes = pl.Series([len(line) + 1 for line in served], dtype=pl.Int64)
    offsets = pl.concat([pl.Series([0], dtype=pl.Int64), sizes.cum_sum()])
    shown = pl.Series(lines.name, [line.decode("utf-8", "replace") for line in served])
    return shown, b"\n".join(served), offsets


def build_views(
    rendered: pl.DataFrame, key_count: int, raw_lines: Mapping[int, bytes] | None = None
) -> tuple[RecordView, KeyView]:
    """Sort pre-rendered rows into the two serving orders.

    ``raw_lines`` (sandbox): row id -> the exact line to serve instead of the rendering.
    """
    key_cols = [f"_k{i}" for i in range(key_count)]
    extra = ["_rid"] if raw_lines else []
    by_rv = rendered.select("_rv", *key_cols, "_line", *extra).sort(["_rv", *key_cols])
    by_key = rendered.select(*key_cols, "_keyjson").unique(key_cols, keep="first").sort(key_cols)
    lines = by_rv["_line"]
    if raw_lines:
        lines, buffer, offsets = _with_raw_lines(lines, by_rv["_rid"], raw_lines)
    else:
        buffer = lines.str.join("\n").cast(pl.Binary).item() if lines.len() else b""
        offsets = pl.concat(
            [pl.Series([0], dtype=pl.Int64), (lines.str.len_bytes().cast(pl.Int64) + 1).cum_sum()]
        )
    records = RecordView(
        rv=by_rv["_rv"],
        keys=tuple(by_rv[c] for c in key_cols),
        lines=lines,
        buffer=buffer,
        offsets=offsets,
    )
    return records, KeyView(keys=tuple(by_key[c] for c in key_cols), json=by_key["_keyjson"])


def _after_ties(keys: tuple[pl.Series, ...], lo: int, hi: int, key: KeyTuple) -> int:
    """Position after ``key`` among rows lo..hi that share the leading sort value."""
    if hi <= lo:
        return hi
    group = list(zip(*(k.slice(lo, hi - lo).to_list() for k in keys), strict=True))
    return lo + bisect_right(group, key)


def record_start(view: RecordView, since: int | None, after: tuple[int, KeyTuple] | None) -> int:
    """Index of the first row with rowversion > since and strictly after the cursor position."""
    start = 0
    if since is not None:
        since = min(since, _INT64_MAX)
        start = int(view.rv.search_sorted(since, side="right"))
    if after is not None:
        rv, key = after
        lo = int(view.rv.search_sorted(rv, side="left"))
        hi = int(view.rv.search_sorted(rv, side="right"))
        start = max(start, _after_ties(view.keys, lo, hi, key))
    return start


def key_start(view: KeyView, after: KeyTuple | None) -> int:
    """Index of the first key strictly after ``after``."""
    if after is None:
        return 0
    lead = view.keys[0]
    lo = int(lead.search_sorted(after[0], side="left"))
    hi = int(lead.search_sorted(after[0], side="right"))
    if len(view.keys) == 1:
        return hi
    return _after_ties(view.keys[1:], lo, hi, after[1:])


def ndjson_page(view: RecordView, start: int, stop: int) -> bytes | memoryview:
    """Rows start..stop as NDJSON (each line ends with a newline)."""
    if stop <= start:
        return b""
    begin = int(view.offsets[start])
    if stop < view.size:
        return memoryview(view.buffer)[begin : int(view.offsets[stop])]
    return view.buffer[begin:] + b"\n"


def json_array_items(view: RecordView, start: int, stop: int) -> bytes:
    """Rows start..stop joined by commas (the inside of a JSON array)."""
    if stop <= start:
        return b""
    end = int(view.offsets[stop]) - 1
    return view.buffer[int(view.offsets[start]) : end].replace(b"\n", b",")


def join_lines(lines: pl.Series, start: int, stop: int, separator: str) -> bytes:
    """Lines start..stop joined by ``separator`` as UTF-8 bytes."""
    if stop <= start:
        return b""
    joined = lines.slice(start, stop - start).str.join(separator).item()
    return str(joined).encode()


def key_at(view: RecordView | KeyView, index: int) -> KeyTuple:
    """The raw key of row ``index`` of a view."""
    return tuple(k[index] for k in view.keys)
