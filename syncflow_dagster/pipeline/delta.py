"""Step 6, delta: compare with the sync state; unchanged records stop here."""

import time

import polars as pl

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.delta import OP, UNCHANGED, classify, find_deletes

# Below this share of the entity's state, look up only the fetched keys.
SUBSET_LOOKUP_SHARE = 0.2


def delta_step(s: SyncSlice, store: StateStore) -> SyncSlice:
    """Classify records as insert / update / unchanged, and find deletes on full runs."""
    began = time.monotonic()
    keys = s.frame.get_column("bk_hash")
    full_compare = s.present_keys is not None or s.mode == "full"
    if full_compare or keys.len() > SUBSET_LOOKUP_SHARE * max(store.count_state(s.entity), 1):
        state = store.load_state(s.entity)
    else:
        state = store.load_state_for(s.entity, keys)
    classified = classify(s.frame, state)
    unchanged = classified.filter(pl.col(OP) == UNCHANGED).height
    deletes = (
        find_deletes(s.present_keys.get_column("bk_hash"), state, keys)
        if s.present_keys is not None
        else None
    )
    return s.advance(
        "delta",
        began,
        frame=classified.filter(pl.col(OP) != UNCHANGED),
        deletes=deletes,
        fetched_keys=keys,
        delete_candidates=0 if deletes is None else deletes.height,
        metrics={"unchanged": unchanged},
    )
