"""Validate stage: the entity's rules over normalized records.

Besides the configured rules, these checks always apply: every business-key column
has a value (``key_missing``); when the entity has a rowversion column, every
record has a rowversion (``rowversion_missing``: a record without one can never
be settled, since the watermark and the state compare rowversions); and a
business key occurs once per run (``duplicate_key``: the row with the highest
rowversion wins, the others fail).
"""

from collections.abc import Sequence

import polars as pl

from syncflow_dagster.config.models import EntityConfig, RuleConfig
from syncflow_dagster.stages.failures import ROW, Check, shown, split_by_checks

NUMERIC = (pl.Int64, pl.Int32, pl.Float64, pl.Float32, pl.UInt32, pl.UInt64)


def _rule_checks(rule: RuleConfig, schema: pl.Schema) -> list[Check]:
    col = pl.col(rule.column)
    name = rule.column
    checks: list[Check] = []
    if rule.required:
        checks.append(Check("required", name, col.is_null(), pl.lit(f"{name} is required")))
    if rule.min is not None:
        checks.append(
            Check(
                "below_min",
                name,
                col < rule.min,
                pl.lit(f"{name} ") + shown(col) + pl.lit(f" is below the minimum {rule.min:g}"),
            )
        )
    if rule.max is not None:
        checks.append(
            Check(
                "above_max",
                name,
                col > rule.max,
                pl.lit(f"{name} ") + shown(col) + pl.lit(f" is above the maximum {rule.max:g}"),
            )
        )
    if rule.max_length is not None:
        checks.append(
            Check(
                "too_long",
                name,
                col.cast(pl.String).str.len_chars() > rule.max_length,
                pl.lit(f"{name} is longer than {rule.max_length} characters"),
            )
        )
    if rule.regex is not None:
        checks.append(
            Check(
                "pattern_mismatch",
                name,
                ~col.cast(pl.String).str.contains(rule.regex),
                pl.lit(f"{name} ") + shown(col) + pl.lit(f" does not match /{rule.regex}/"),
            )
        )
    if rule.allowed is not None:
        allowed = list(rule.allowed)
        dtype = schema.get(rule.column)
        values = pl.Series(allowed).cast(dtype) if dtype is not None else pl.Series(allowed)
        listing = ", ".join(str(v) for v in allowed)
        checks.append(
            Check(
                "not_allowed",
                name,
                ~col.is_in(values.implode()),
                pl.lit(f"{name} ") + shown(col) + pl.lit(f" is not one of: {listing}"),
            )
        )
    if rule.not_before is not None:
        other = pl.col(rule.not_before)
        checks.append(
            Check(
                "date_order",
                name,
                col < other,
                pl.lit(f"{name} ")
                + shown(col)
                + pl.lit(f" is before {rule.not_before} ")
                + shown(other),
            )
        )
    return checks


_LOSER = "_duplicate_loser"


def _mark_duplicate_losers(
    frame: pl.DataFrame, key: Sequence[str], rowversion: str | None
) -> pl.DataFrame:
    """Add a flag for every row of a repeated business key but the latest one.

    The latest is the row with the highest rowversion (then the last fetched).
    Cheap when keys are unique: only the repeated keys are ranked. Repeats are
    looked for among the keys' 64-bit hashes (~2.5x faster than among 1M
    strings); a row whose hash repeats but whose key does not is alone in its
    key's ranking window below, so it stays the latest of its key.
    """
    key_expr = pl.col(key[0]) if len(key) == 1 else pl.struct(list(key))
    known = pl.all_horizontal([pl.col(k).is_not_null() for k in key])
    repeated = frame.select((key_expr.hash().is_duplicated() & known).alias("r")).to_series()
    if not repeated.any():
        return frame.with_columns(pl.lit(False).alias(_LOSER))
    order = [pl.col(rowversion).fill_null(-1), pl.col(ROW)] if rowversion else [pl.col(ROW)]
    subset = frame.filter(repeated).select(
        pl.col(ROW),
        (pl.col(ROW) != pl.col(ROW).sort_by(order).last().over(list(key))).alias(_LOSER),
    )
    return frame.join(subset, on=ROW, how="left").with_columns(pl.col(_LOSER).fill_null(False))


def _duplicate_check(key: Sequence[str]) -> Check:
    return Check(
        "duplicate_key",
        ",".join(key),
        pl.col(_LOSER),
        pl.lit("business key (")
        + pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator=", ")
        + pl.lit(") occurs more than once; the row with the highest rowversion wins"),
    )


def _rowversion_check(rowversion: str) -> Check:
    return Check(
        "rowversion_missing",
        rowversion,
        pl.col(rowversion).is_null(),
        pl.lit(
            f"rowversion column {rowversion} is empty: a record without a rowversion can "
            "never be settled"
        ),
    )


def validate(frame: pl.DataFrame, entity: EntityConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split normalized records into valid ones and one failure per invalid record."""
    key = entity.source.key
    checks = [
        Check("key_missing", k, pl.col(k).is_null(), pl.lit(f"business-key column {k} is empty"))
        for k in key
    ]
    rowversion = entity.source.rowversion
    if rowversion is not None:
        checks.append(_rowversion_check(rowversion))
    checks.append(_duplicate_check(key))
    for rule in entity.rules:
        checks.extend(_rule_checks(rule, frame.schema))
    marked = _mark_duplicate_losers(frame, key, rowversion)
    good, failures = split_by_checks(marked, checks)
    return good.drop(_LOSER), failures
