"""Step 6, delta: compare with the sync state; unchanged records stop here."""

import time

import polars as pl

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.delta import OP, UNCHANGED, classify


def _state_of(s: SyncSlice, store: StateStore) -> pl.DataFrame:
    """The state (with data hashes) of the records the delta compares.

    An incremental fetch loaded the state of the keys it fetched. A full run's
    fetch loaded only every key's rowversion and settled most records with it;
    the rest get their hashes by key — or, when they are many (say, after a
    mapping change), with the whole state in one read.
    """
    versions = s.state
    if versions is not None and "data_hash" in versions.columns:  # the fetched keys' state
        return versions
    if versions is not None and versions.height == 0:  # nothing synced yet
        return versions.with_columns(pl.lit(None, pl.String).alias("data_hash"))
    if versions is not None and s.frame.height > versions.height // 4:
        return store.load_state(s.entity)
    return store.load_state_for(s.entity, s.frame.get_column("bk_hash"))


def delta_step(s: SyncSlice, store: StateStore) -> SyncSlice:
    """Classify records as insert / update / unchanged (deletes were found at fetch).

    Records that
    turn out unchanged although they were not settled at fetch (a new
    rowversion, or state from an older mapping) get their state row re-stamped
    (rowversion, batch and so mapping version), so the next run settles them early.
    """
    began = time.monotonic()
    state = _state_of(s, store)
    classified = classify(s.frame, state)
    stale = s.stale_keys if s.stale_keys is not None else pl.Series([], dtype=pl.String)
    unchanged = classified.filter(pl.col(OP) == UNCHANGED)
    restamp = (
        unchanged.select("bk_hash", "data_hash", "rowversion")
        .join(state.select("bk_hash", pl.col("rowversion").alias("_state_rv")), on="bk_hash")
        .filter(
            pl.col("rowversion").ne_missing(pl.col("_state_rv"))
            | pl.col("bk_hash").is_in(stale.implode())
        )
    )
    if restamp.height:
        store.upsert_state(s.entity, restamp.drop("_state_rv"), s.batch_id)
    fetched = s.fetched_keys if s.fetched_keys is not None else s.frame["bk_hash"]
    return s.advance(
        "delta",
        began,
        # no copy of the wide frame when nothing is unchanged (an initial load)
        frame=classified.filter(pl.col(OP) != UNCHANGED) if unchanged.height else classified,
        state=None,
        fetched_keys=fetched,
        metrics={"unchanged": s.metrics["unchanged"] + unchanged.height},
    )
