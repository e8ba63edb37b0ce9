"""Counter-based random draws as polars expressions, so generation is vectorized.

A draw depends only on (stream, row index): the same seed gives the same data every time,
and any subset of rows can be regenerated independently. Draws use polars' own ``hash``,
which is fast and stable within one polars version (the lock file pins it); across polars
upgrades the generated values may differ, but never the shape or the rules of the data.
"""

import hashlib
from collections.abc import Sequence

import polars as pl


def stream(*parts: object) -> int:
    """A 63-bit stream id from any printable parts (seed, entity, column, salt ...)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def bits(index: pl.Expr, stream_id: int) -> pl.Expr:
    """64 random bits per row (UInt64)."""
    return index.hash(seed=stream_id)


def uniform(index: pl.Expr, stream_id: int) -> pl.Expr:
    """A uniform float in [0, 1) per row."""
    return (bits(index, stream_id) // 2048).cast(pl.Float64) * (2.0**-53)


def randint(index: pl.Expr, stream_id: int, low: int | pl.Expr, high: int | pl.Expr) -> pl.Expr:
    """A uniform integer in [low, high] (both inclusive) per row."""
    low_e = low if isinstance(low, pl.Expr) else pl.lit(low, pl.Int64)
    high_e = high if isinstance(high, pl.Expr) else pl.lit(high, pl.Int64)
    span = (high_e - low_e + 1).cast(pl.Float64)
    return low_e + (uniform(index, stream_id) * span).floor().cast(pl.Int64)


def choice(index: pl.Expr, stream_id: int, values: Sequence[str]) -> pl.Expr:
    """One of ``values`` per row, uniformly."""
    pick = randint(index, stream_id, 0, len(values) - 1)
    return pick.replace_strict(dict(enumerate(values)), return_dtype=pl.String)


def weighted(u: pl.Expr, options: Sequence[tuple[object, float]]) -> pl.Expr:
    """Map a uniform draw ``u`` to one of the options' values, with probability by weight."""
    total = sum(weight for _, weight in options)
    bounds: list[float] = []
    acc = 0.0
    for _, weight in options[:-1]:
        acc += weight / total
        bounds.append(acc)
    expr = pl.lit(options[-1][0])
    for (value, _), bound in reversed(list(zip(options[:-1], bounds, strict=True))):
        expr = pl.when(u < bound).then(pl.lit(value)).otherwise(expr)
    return expr
