"""Step 6, delta: compare with the sync state; unchanged records stop here."""

import time

import polars as pl

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.delta import OP, UNCHANGED, classify, find_deletes


def delta_step(s: SyncSlice, store: StateStore) -> SyncSlice:
    """Classify records as insert / update / unchanged, and find deletes on full runs.

    The state comes from the fetch step (which loaded it once). Records that
    turn out unchanged although they were not settled at fetch (a new
    rowversion, or state from an older mapping) get their state row re-stamped
    (rowversion, batch and so mapping version), so the next run settles them early.
    """
    began = time.monotonic()
    state = s.state if s.state is not None else store.load_state_for(s.entity, s.frame["bk_hash"])
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
    deletes = s.deletes  # found at fetch when the full fetch saw every key
    if deletes is None and s.present_keys is not None:
        deletes = find_deletes(s.present_keys.get_column("bk_hash"), state, fetched)
    return s.advance(
        "delta",
        began,
        # no copy of the wide frame when nothing is unchanged (an initial load)
        frame=classified.filter(pl.col(OP) != UNCHANGED) if unchanged.height else classified,
        deletes=deletes,
        state=None,
        fetched_keys=fetched,
        delete_candidates=0 if deletes is None else deletes.height,
        metrics={"unchanged": s.metrics["unchanged"] + unchanged.height},
    )
