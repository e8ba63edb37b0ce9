"""Delta stage: compare a run's records with the sync state.

``insert`` — the business key is not in the state; ``update`` — it is, with a
different DATA_HASH; ``unchanged`` — same DATA_HASH: never sent. Deletes are the
keys in the state that the ERP no longer lists (full runs only).
"""

import polars as pl

OP = "_op"
INSERT, UPDATE, UNCHANGED, DELETE = "insert", "update", "unchanged", "delete"


def classify(records: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """Add ``_op`` (insert / update / unchanged) to records carrying bk_hash and data_hash.

    Only the two hash columns take part in the join, so the (wide) records are
    not copied by it.

    Args:
        records: one row per record, with ``bk_hash`` and ``data_hash``.
        state: the sync state of (at least) those keys: ``bk_hash``, ``data_hash``.
    """
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
        present: BK_HASHes of every key the ERP lists now (from ``/keys``).
        state: the entity's sync state (``bk_hash``, ``rowversion``).
        fetched: BK_HASHes of the records this run fetched; a record fetched but
            missing from the key listing (deleted meanwhile) is left to the next run.
    """
    gone = state.select("bk_hash", "rowversion").filter(~pl.col("bk_hash").is_in(present.implode()))
    if fetched.len() and gone.height:
        # Probe the (large) fetched keys against the (few) gone ones.
        seen = fetched.filter(fetched.is_in(gone.get_column("bk_hash").implode()))
        gone = gone.filter(~pl.col("bk_hash").is_in(seen.implode()))
    return gone.with_columns(pl.lit(DELETE).alias(OP))


def settled_rows(
    keys: pl.DataFrame, rowversions: pl.Series, state: pl.DataFrame, stale: pl.Series
) -> pl.Series:
    """``_row``s of fetched records the hub already has in exactly this version.

    A record is settled when its state carries the same rowversion (the ERP
    raises it on every change) and was written under the current mapping (not
    in ``stale``). Keys fetched twice in one run are never settled: the validate
    stage must see every copy.

    Args:
        keys: ``_row`` and ``bk_hash`` of fetched records with a readable key.
        rowversions: the rowversion of every fetched record, indexed by ``_row``.
        state: ``bk_hash`` and ``rowversion`` of (at least) those keys.
        stale: BK_HASHes whose state was written under another mapping version.
    """
    candidates = keys.with_columns(rowversions.gather(keys.get_column("_row")).alias("_rv"))
    candidates = candidates.filter(
        pl.col("_rv").is_not_null()
        & ~pl.col("bk_hash").is_duplicated()
        & ~pl.col("bk_hash").is_in(stale.implode())
    )
    same = candidates.join(
        state.select("bk_hash", pl.col("rowversion").alias("_state_rv")), on="bk_hash"
    ).filter(pl.col("_state_rv") == pl.col("_rv"))
    return same.get_column("_row")
