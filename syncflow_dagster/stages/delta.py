"""Delta stage: compare a run's records with the sync state.

``insert`` — the business key is not in the state; ``update`` — it is, with a
different DATA_HASH; ``unchanged`` — same DATA_HASH: never sent. Deletes are the
keys in the state that the ERP no longer lists (full runs only).
"""

from dataclasses import dataclass

import polars as pl

OP = "_op"
INSERT, UPDATE, UNCHANGED, DELETE = "insert", "update", "unchanged", "delete"

KEY = "bk_key"
"""A BK_HASH as one 128-bit integer: the form of key sets that span a whole table."""


def bk_key(column: str = "bk_hash") -> pl.Expr:
    """The BK_HASH (32 hex digits) in ``column`` as a 128-bit integer named ``bk_key``.

    16 bytes a key instead of 48 for the hex text: APISmith's listing of a
    7M-row table takes 112 MB, and joins on it hash integers, not strings.
    """
    return pl.col(column).str.to_integer(base=16, dtype=pl.UInt128).alias(KEY)


def key_set(hashes: pl.Series) -> pl.Series:
    """BK_HASHes (hex) as a key set (``bk_key``)."""
    return hashes.to_frame("bk_hash").select(bk_key()).to_series()


def classify(records: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """Add ``_op`` (insert / update / unchanged) to records carrying bk_hash and data_hash.

    Only the two hash columns take part in the join, so the (wide) records are
    not copied by it.

    Args:
        records: one row per record, with ``bk_hash`` and ``data_hash``.
        state: the sync state of (at least) those keys: ``bk_hash``, ``data_hash``.
    """
    if state.height == 0:  # nothing synced yet: every record is an insert, no join needed
        return records.with_columns(pl.lit(INSERT).alias(OP))
    known = state.select("bk_hash", pl.col("data_hash").alias("_state_hash"))
    ops = records.select("bk_hash", "data_hash").join(
        known, on="bk_hash", how="left", maintain_order="left"
    )
    op = (
        pl.when(pl.col("_state_hash").is_null())
        .then(pl.lit(INSERT))
        .when(pl.col("_state_hash") == pl.col("data_hash"))
        .then(pl.lit(UNCHANGED))
        .otherwise(pl.lit(UPDATE))
    )
    return records.with_columns(ops.select(op.alias(OP)).to_series())


def find_deletes(present: pl.Series, state: pl.DataFrame, fetched: pl.Series) -> pl.DataFrame:
    """Keys in the state that the ERP no longer lists (and that this run did not fetch).

    Args:
        present: every key the ERP lists now (from ``/keys``), as a :func:`key_set`.
        state: the entity's sync state (``bk_hash``, ``rowversion``).
        fetched: BK_HASHes of the records this run fetched; a record fetched but
            missing from the key listing (deleted meanwhile) is left to the next run.
    """
    gone = (
        state.select("bk_hash", "rowversion", bk_key())
        .join(present.to_frame(KEY), on=KEY, how="anti")
        .drop(KEY)
    )
    if fetched.len() and gone.height:
        # Probe the (large) fetched keys against the (few) gone ones.
        seen = fetched.filter(fetched.is_in(gone.get_column("bk_hash").implode()))
        gone = gone.filter(~pl.col("bk_hash").is_in(seen.implode()))
    return gone.with_columns(pl.lit(DELETE).alias(OP))


def rows_mask(rows: pl.Series, height: int) -> pl.Series:
    """A boolean mask of ``height`` rows, true at the given ``_row`` positions (no hashing)."""
    mask = pl.repeat(False, height, dtype=pl.Boolean, eager=True)
    return mask.scatter(rows, True) if rows.len() else mask


@dataclass(frozen=True)
class Comparison:
    """Fetched records against the state: the settled ones, and (full listing) the gone ones."""

    settled: pl.Series
    gone: pl.DataFrame | None


def compare_with_state(
    keys: pl.DataFrame,
    rowversions: pl.Series,
    state: pl.DataFrame,
    stale: pl.Series,
    complete: bool,
) -> Comparison:
    """Settle fetched records the hub has in exactly this version; find the ones gone.

    A record is settled when its state carries the same rowversion (the ERP
    raises it on every change) and was written under the current mapping (not
    in ``stale``). Keys fetched twice in one run are never settled: the validate
    stage must see every copy. When the fetch saw every record of the entity
    (``complete``: a full run read to the end), state keys it did not see are
    gone from the ERP: delete candidates. One join answers both.

    Args:
        keys: ``_row`` and ``bk_hash`` of fetched records with a readable key.
        rowversions: the rowversion of every fetched record, indexed by ``_row``.
        state: ``bk_hash`` and ``rowversion`` of (at least) those keys.
        stale: BK_HASHes whose state was written under another mapping version.
        complete: whether the fetch listed every record of the entity.
    """
    fetched = keys.with_columns(rowversions.gather(keys.get_column("_row")).alias("_rv"))
    joined = state.select("bk_hash", pl.col("rowversion").alias("_state_rv")).join(
        fetched, on="bk_hash", how="left"
    )
    same = joined.filter(pl.col("_state_rv") == pl.col("_rv"))
    # A key fetched twice has a copy that is not settled (its rowversion differs
    # from the state's): that key's other copy must not be settled either. The
    # unsettled are few, so the many settled keys are probed against them.
    unsettled = ~rows_mask(same.get_column("_row"), rowversions.len())
    others = keys.filter(unsettled.gather(keys.get_column("_row"))).get_column("bk_hash")
    if others.len():
        same = same.filter(~pl.col("bk_hash").is_in(others.implode()))
    if stale.len():
        same = same.filter(~pl.col("bk_hash").is_in(stale.implode()))
    gone = (
        joined.filter(pl.col("_row").is_null()).select(
            "bk_hash", pl.col("_state_rv").alias("rowversion"), pl.lit(DELETE).alias(OP)
        )
        if complete
        else None
    )
    return Comparison(same.get_column("_row").unique(), gone)
