"""Step 7, resolve: encode what is sent, hold children whose parents are missing."""

import time

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.encode import upsert_line
from syncflow_dagster.stages.resolve import parent_column, parents_to_look_up, resolve


def resolve_step(s: SyncSlice, catalog: EntityCatalog, store: StateStore) -> SyncSlice:
    """Plan the sends (deletes, then upserts) and queue children with missing parents."""
    began = time.monotonic()
    cfg = catalog[s.entity]
    parents = [p.entity for p in cfg.parents]
    hub_parents = [(catalog[p].target.entity, parent_column(p)) for p in parents]
    upserts = s.frame.with_columns(upsert_line([f.name for f in cfg.target.fields], hub_parents))
    waiting = store.waiting_pending(s.entity)
    needed = parents_to_look_up(upserts, waiting, parents)
    present = {p: store.existing_keys(p, needed[p]) for p in parents}
    deletes = s.deletes if s.deletes is not None else pl.DataFrame(
        schema={"bk_hash": pl.String, "rowversion": pl.Int64}
    )
    fetched = s.fetched_keys if s.fetched_keys is not None else pl.Series("bk_hash", [], pl.String)
    plan = resolve(upserts, deletes, waiting, fetched, parents, present)
    return s.advance(
        "resolve",
        began,
        frame=s.frame.clear(),  # what goes on is in the plan; drop the mapped records
        plan=plan,
        pending=plan.pending,
        metrics={"pending_children": plan.pending.height, "resolved_children": plan.released},
    )
