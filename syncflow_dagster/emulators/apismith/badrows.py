"""Deliberately bad rows: a deterministic ``bad_fraction`` of each entity, each with its kind.

Every row carries three bookkeeping columns:

* ``_kind`` — why the row is bad (null for a good row);
* ``_bad_col`` — the column that makes it bad;
* ``_ovr_val`` — for kinds whose raw value has no true value (unreadable number, impossible
  date, empty key) the raw text sent instead; the true value is then null.

Kinds: ``bad_number``, ``bad_date``, ``empty_key``, ``over_length``, ``orphan`` (a child
naming a parent that does not exist), ``duplicate_key`` (an extra row repeating an existing
key with other values and a later rowversion; the original stays good) and
``due_before_start`` (a work order due before it starts).
"""

from collections.abc import Callable

import polars as pl

from syncflow_dagster.emulators.apismith import generate, rng
from syncflow_dagster.emulators.apismith.schema import Entity

BAD_NUMBERS = ["12..5", "abc", "1.2.3", "#VALUE!"]
BAD_DATES = ["31-FEB-26", "2026-13-45", "30-FEB-2026", "2026-02-30", "00000000"]
EMPTY_KEYS = ["", "   "]
_LONG_TEXT = "Überlänge, zu lang für die Spalte — texte beaucoup trop long pour la colonne. " * 8

BAD_KINDS: dict[str, list[str]] = {
    "items": ["bad_number", "bad_date", "empty_key", "over_length", "duplicate_key"],
    "work_centers": ["bad_number", "empty_key", "over_length", "duplicate_key"],
    "work_orders": [
        "bad_number",
        "bad_date",
        "empty_key",
        "over_length",
        "orphan",
        "duplicate_key",
        "due_before_start",
    ],
    "work_order_operations": [
        "bad_number",
        "bad_date",
        "empty_key",
        "over_length",
        "orphan",
        "duplicate_key",
    ],
}
"""The kinds of bad row each entity gets, assigned round-robin to its bad rows."""

_TARGETS: dict[str, dict[str, list[str]]] = {
    "items": {
        "bad_number": ["STD_COST", "LEAD_TIME_DAYS"],
        "bad_date": ["CREATED_DATE"],
        "over_length": ["DESCRIPTION"],
    },
    "work_centers": {"bad_number": ["CAPACITY_HRS", "EFFICIENCY_PCT"], "over_length": ["WC_NAME"]},
    "work_orders": {
        "bad_number": ["ORDER_QTY", "COMPLETED_QTY"],
        "bad_date": ["START_DATE", "DUE_DATE"],
        "over_length": ["NOTES"],
        "orphan": ["ITEM_NO"],
        "due_before_start": ["DUE_DATE"],
    },
    "work_order_operations": {
        "bad_number": ["SETUP_HRS", "RUN_HRS"],
        "bad_date": ["SCHED_START"],
        "over_length": ["OP_DESC"],
        "orphan": ["WO_NO", "WC_CODE"],
    },
}

# A foreign key no generated parent ever has (generated keys have fewer digits after the prefix).
_MISSING_PARENT: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "ITEM_NO": lambda rid: generate.code("ITM-9", rid % 1_000_000, 6),
    "WO_NO": lambda rid: generate.code("WO-9", rid % 100_000_000, 8),
    "WC_CODE": lambda rid: generate.code("WC-99", rid % 1000, 3),
}

BOOKKEEPING = {"_kind": pl.String(), "_bad_col": pl.String(), "_ovr_val": pl.String()}


def with_no_bad(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the bookkeeping columns, all null (good rows)."""
    return frame.with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in BOOKKEEPING.items()
    )


def inject(
    frame: pl.DataFrame, entity: Entity, seed: int, fraction: float, next_rid: int
) -> pl.DataFrame:
    """Turn ``round(fraction * rows)`` rows bad (kinds round-robin) and append duplicates.

    ``frame`` holds the good rows with ``_rid``; duplicates get row ids from ``next_rid``.
    """
    frame = with_no_bad(frame)
    n_bad = round(frame.height * fraction)
    if n_bad == 0:
        return frame
    kinds = BAD_KINDS[entity.name]
    targets = _TARGETS[entity.name]
    rid = pl.col("_rid")

    def draw(name: str) -> pl.Expr:
        return rng.uniform(rid, rng.stream(seed, "bad", entity.name, name))

    rank = draw("rank").rank("ordinal").cast(pl.Int64) - 1
    kind = (
        pl.when(rank < n_bad)
        .then((rank % len(kinds)).replace_strict(dict(enumerate(kinds)), return_dtype=pl.String))
        .otherwise(None)
    )
    ranked = frame.with_columns(_kind=kind)
    good = ranked.filter(pl.col("_kind").is_null())
    frame = ranked.filter(pl.col("_kind").is_not_null())
    is_kind = {k: (pl.col("_kind") == k).fill_null(False) for k in kinds}

    bad_col: pl.Expr = pl.lit(None, pl.String)
    for name, columns in targets.items():
        if name in is_kind:
            picked = rng.choice(rid, rng.stream(seed, "bad", entity.name, name, "col"), columns)
            bad_col = pl.when(is_kind[name]).then(picked).otherwise(bad_col)
    key0 = entity.key[0]
    bad_col = (
        pl.when(is_kind["empty_key"] | is_kind["duplicate_key"])
        .then(pl.lit(key0))
        .otherwise(bad_col)
    )
    frame = frame.with_columns(_bad_col=bad_col)

    def stream_choice(name: str, values: list[str]) -> pl.Expr:
        return rng.choice(rid, rng.stream(seed, "bad", entity.name, name, "val"), values)

    ovr = (
        pl.when(is_kind.get("bad_number", pl.lit(False)))
        .then(stream_choice("bad_number", BAD_NUMBERS))
        .when(is_kind.get("bad_date", pl.lit(False)))
        .then(stream_choice("bad_date", BAD_DATES))
        .when(is_kind["empty_key"])
        .then(stream_choice("empty_key", EMPTY_KEYS))
        .otherwise(None)
    )
    frame = frame.with_columns(_ovr_val=ovr)

    changes: list[pl.Expr] = []
    for col in entity.columns:
        name = col.name
        if name not in frame.columns:
            continue
        hit = (pl.col("_bad_col") == name).fill_null(False)
        value = pl.col(name)
        expr = pl.when(hit & pl.col("_ovr_val").is_not_null()).then(None).otherwise(value)
        if "over_length" in targets and name in targets["over_length"]:
            # Over by 10-40 characters, and not ending in a space: trimming or NFC
            # (which a normalizer rightly applies first) must not bring it back in.
            extra = rng.randint(rid, rng.stream(seed, "bad", entity.name, "len"), 10, 40)
            long_text = pl.concat_str(value.fill_null("Text"), pl.lit(" "), pl.lit(_LONG_TEXT))
            cut = long_text.str.slice(0, extra + col.length).str.replace(r"\s$", "x")
            expr = pl.when(hit & is_kind["over_length"]).then(cut).otherwise(expr)
        if name in _MISSING_PARENT and "orphan" in is_kind:
            expr = pl.when(hit & is_kind["orphan"]).then(_MISSING_PARENT[name](rid)).otherwise(expr)
        if name == "DUE_DATE" and "due_before_start" in is_kind:
            early = pl.col("START_DATE") - pl.duration(
                days=rng.randint(rid, rng.stream(seed, "bad", entity.name, "due"), 1, 10)
            )
            expr = pl.when(is_kind["due_before_start"]).then(early).otherwise(expr)
        changes.append(expr.alias(name))
    frame = frame.with_columns(changes)

    originals = frame.filter(is_kind["duplicate_key"])
    frame = frame.with_columns(
        pl.when(is_kind["duplicate_key"]).then(None).otherwise(pl.col(c)).alias(c)
        for c in BOOKKEEPING
    )
    parts = [good, frame]
    if originals.height:
        twins = originals.with_columns(
            _rid=pl.int_range(next_rid, next_rid + originals.height, dtype=pl.Int64)
        )
        filled = generate.FILLERS[entity.name](twins, generate.Draws(seed, entity.name, salt=1))
        parts.append(filled.select(frame.columns))
    return pl.concat(parts, how="vertical").sort("_rid")
