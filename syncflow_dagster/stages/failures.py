"""Per-record failures of a stage, and how several checks become one failure per record.

Stages return failures as a frame with one row per failed record: ``_row``,
``code`` (machine readable, of the first check that failed), ``column`` and
``detail`` (human readable, naming every check that failed). The pipeline
turns them into dead letters with the record's raw, normalized and mapped forms.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

ROW = "_row"
FAILURE_SCHEMA = {ROW: pl.UInt32, "code": pl.String, "column": pl.String, "detail": pl.String}


@dataclass(frozen=True)
class Check:
    """One vectorized check: where ``failed`` is true, the record breaks it."""

    code: str
    column: str | None
    failed: pl.Expr
    detail: pl.Expr


def empty_failures() -> pl.DataFrame:
    """A failures frame with no rows."""
    return pl.DataFrame(schema=FAILURE_SCHEMA)


def split_by_checks(
    frame: pl.DataFrame, checks: Sequence[Check]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``frame`` into the rows that pass every check and one failure row per other row."""
    if not checks or frame.height == 0:
        return frame, empty_failures()
    flags = [c.failed.fill_null(False).alias(f"_f{i}") for i, c in enumerate(checks)]
    marked = frame.with_columns(flags)
    any_failed = pl.any_horizontal([pl.col(f"_f{i}") for i in range(len(checks))])
    bad = marked.filter(any_failed)
    good = marked.filter(~any_failed).drop([f"_f{i}" for i in range(len(checks))])
    if bad.height == 0:
        return good, empty_failures()
    code = pl.coalesce(
        [pl.when(pl.col(f"_f{i}")).then(pl.lit(c.code)) for i, c in enumerate(checks)]
    )
    column = pl.coalesce(
        [pl.when(pl.col(f"_f{i}")).then(pl.lit(c.column)) for i, c in enumerate(checks)]
    )
    detail = pl.concat_str(
        [pl.when(pl.col(f"_f{i}")).then(c.detail) for i, c in enumerate(checks)],
        separator="; ",
        ignore_nulls=True,
    )
    failures = bad.select(
        pl.col(ROW).cast(pl.UInt32),
        code.alias("code"),
        column.cast(pl.String).alias("column"),
        detail.alias("detail"),
    )
    return good, failures


def shown(expr: pl.Expr, limit: int = 80) -> pl.Expr:
    """A value as text for a detail message, quoted and cut to ``limit`` characters."""
    text = expr.cast(pl.String)
    cut = (
        pl.when(text.str.len_chars() > limit)
        .then(text.str.slice(0, limit) + pl.lit("…"))
        .otherwise(text)
    )
    return pl.when(text.is_null()).then(pl.lit("null")).otherwise(pl.lit("'") + cut + pl.lit("'"))
