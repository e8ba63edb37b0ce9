"""Canonical text of a column value: the one string form identity hashes are built from.

The forms are specified byte for byte in docs/IDENTITY.md and pinned by golden vectors.
Changing any of them changes every BK_HASH or DATA_HASH that uses it: that is a
migration, not a refactor.
"""

from __future__ import annotations

import polars as pl
import polars.selectors as cs
from polars._typing import PolarsDataType
from polars_hash import BytesNameSpace

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"
_DATETIME_UNITS = ("us", "ms")


def canonical_text_expr(column: str | pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    """Build the expression that renders ``column`` in its canonical text form.

    Null stays null. A NaN or infinite Float64 has no canonical text and renders as
    null too; the hash builders give such a row a null hash instead (see
    :func:`non_finite_expr`).

    Args:
        column: Column name, or an expression producing values of ``dtype``.
        dtype: The polars dtype of those values (from the frame's schema).

    Returns:
        A String expression named like the input.

    Raises:
        TypeError: The dtype has no canonical form (the message names column and dtype).
    """
    text = _text(column, dtype)
    name = (
        column if isinstance(column, str) else column.meta.output_name(raise_if_undetermined=False)
    )
    return text if name is None else text.alias(name)


def _text(column: str | pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    expr = column_expr(column) if isinstance(column, str) else column
    dtype = _instance(dtype)
    if dtype == pl.String:
        return expr
    if dtype == pl.Null:
        return expr.cast(pl.String)
    if dtype.is_integer():
        return expr.cast(pl.String)
    if dtype == pl.Float64:
        # -0.0 == 0.0, so -0.0 takes the bits of +0.0. (`x + 0.0` would not do:
        # polars simplifies it away.)
        positive_zero = pl.when(expr == 0.0).then(pl.lit(0.0, pl.Float64)).otherwise(expr)
        bits = BytesNameSpace(positive_zero).to_be().bin.encode("hex")
        return pl.when(expr.is_finite()).then(bits).otherwise(pl.lit(None, pl.String))
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    if dtype == pl.Date:
        return expr.dt.strftime(DATE_FORMAT)
    if isinstance(dtype, pl.Datetime):
        _check_datetime(column, dtype)
        if dtype.time_zone != "UTC":
            expr = expr.dt.convert_time_zone("UTC")
        return expr.dt.strftime(DATETIME_FORMAT)
    raise TypeError(
        f"column {_name(column)!r} has dtype {dtype}, which has no canonical text form; "
        "supported: String, integers, Float64, Boolean, Date, Datetime('us'|'ms', <time "
        "zone>), Null (see docs/IDENTITY.md)"
    )


def non_finite_expr(column: str | pl.Expr, dtype: PolarsDataType) -> pl.Expr | None:
    """Boolean expression: the value is NaN or infinite (never null); None if it cannot be."""
    if _instance(dtype) != pl.Float64:
        return None
    expr = column_expr(column) if isinstance(column, str) else column
    return (expr.is_nan() | expr.is_infinite()).fill_null(value=False)


def column_expr(name: str) -> pl.Expr:
    """The column called exactly ``name`` (``pl.col`` would read "*" or "^...$" as patterns)."""
    return cs.by_name(name).as_expr()


def _check_datetime(column: str | pl.Expr, dtype: pl.Datetime) -> None:
    if dtype.time_zone is None:
        raise TypeError(
            f"column {_name(column)!r} has dtype {dtype} without a time zone; its instant is "
            "ambiguous, so it has no canonical text form (normalize to Datetime('us', 'UTC'))"
        )
    if dtype.time_unit not in _DATETIME_UNITS:
        raise TypeError(
            f"column {_name(column)!r} has dtype {dtype}; the canonical form keeps microseconds, "
            "so nanosecond datetimes would be truncated (cast to Datetime('us', 'UTC'))"
        )


def _instance(dtype: PolarsDataType) -> pl.DataType:
    return dtype() if isinstance(dtype, type) else dtype


def _name(column: str | pl.Expr) -> str:
    if isinstance(column, str):
        return column
    return column.meta.output_name(raise_if_undetermined=False) or str(column)
