"""Helpers for the row-per-record side tables (dead letters, pending children)."""

from collections.abc import Iterable, Mapping

import polars as pl

from syncflow_dagster.edges.state.types import BK_HASH_BYTES, check_hex

UTC_TIME = pl.Datetime("us", "UTC")


def json_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    """Column ``name`` as JSON text: strings pass through, structs/lists are encoded."""
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Struct):
        return pl.col(name).struct.json_encode().alias(name)
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        items = pl.col(name).list.eval(pl.element().struct.json_encode()).list.join(",")
        return pl.when(pl.col(name).is_not_null()).then("[" + items + "]").alias(name)
    return pl.col(name).cast(pl.String).alias(name)


def _utc(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype == pl.Null:
        return pl.lit(None, dtype=UTC_TIME).alias(name)
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise ValueError(f"column {name} must be an aware datetime (UTC), not {dtype}")
    return pl.col(name).dt.convert_time_zone("UTC").cast(UTC_TIME)


def record_frame(
    frame: pl.DataFrame,
    columns: Mapping[str, pl.DataType],
    required: Iterable[str],
    json_columns: Iterable[str] = (),
    *,
    nullable_key: bool,
) -> pl.DataFrame:
    """Narrow ``frame`` to ``columns`` (missing optional ones become null), checked.

    Raises:
        ValueError: a required column is missing or a BK_HASH is malformed.
    """
    missing = sorted(set(required) - set(frame.columns))
    if missing:
        raise ValueError(f"frame lacks required column(s) {missing}")
    json_names = set(json_columns)
    exprs = []
    for name, dtype in columns.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif name in json_names:
            exprs.append(json_text(frame, name))
        elif dtype == UTC_TIME:
            exprs.append(_utc(frame, name))
        else:
            exprs.append(pl.col(name).cast(dtype))
    out = frame.select(exprs)
    if "bk_hash" in out.columns:
        check_hex(out["bk_hash"], BK_HASH_BYTES, "bk_hash", nullable=nullable_key)
    return out
