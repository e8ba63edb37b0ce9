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

    Args:
        records: one row per record, with ``bk_hash`` and ``data_hash``.
        state: the sync state of (at least) those keys: ``bk_hash``, ``data_hash``.
    """
    known = state.select("bk_hash", pl.col("data_hash").alias("_state_hash"))
    joined = records.join(known, on="bk_hash", how="left")
    op = (
        pl.when(pl.col("_state_hash").is_null())
        .then(pl.lit(INSERT))
        .when(pl.col("_state_hash") == pl.col("data_hash"))
        .then(pl.lit(UNCHANGED))
        .otherwise(pl.lit(UPDATE))
    )
    return joined.with_columns(op.alias(OP)).drop("_state_hash")


def find_deletes(present: pl.Series, state: pl.DataFrame, fetched: pl.Series) -> pl.DataFrame:
    """Keys in the state that the ERP no longer lists (and that this run did not fetch).

    Args:
        present: BK_HASHes of every key the ERP lists now (from ``/keys``).
        state: the entity's sync state (``bk_hash``, ``rowversion``).
        fetched: BK_HASHes of the records this run fetched; a record fetched but
            missing from the key listing (deleted meanwhile) is left to the next run.
    """
    gone = state.select("bk_hash", "rowversion").join(
        pl.DataFrame({"bk_hash": present}).unique(), on="bk_hash", how="anti"
    )
    if fetched.len():
        gone = gone.join(pl.DataFrame({"bk_hash": fetched}).unique(), on="bk_hash", how="anti")
    return gone.with_columns(pl.lit(DELETE).alias(OP))
