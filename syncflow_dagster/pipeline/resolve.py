"""Step 7, resolve: plan what is sent, hold children whose parents are missing.

Records are encoded as ingest lines only when their batch goes out (in the
ingest step, on the sender threads, while the hub works on earlier batches);
here only the children that wait are encoded, for their pending payload.
"""

import time

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.delta import DELETE, KEY, bk_key, key_set
from syncflow_dagster.stages.encode import upsert_line
from syncflow_dagster.stages.resolve import parent_column, parents_to_look_up, resolve


def line_expr(catalog: EntityCatalog, entity: str) -> pl.Expr:
    """The expression that encodes a mapped record of ``entity`` as its ingest line."""
    cfg = catalog[entity]
    hub_parents = [(catalog[p.entity].target.entity, parent_column(p.entity)) for p in cfg.parents]
    return upsert_line([f.name for f in cfg.target.fields], hub_parents)


def _drop_gone(
    waiting: pl.DataFrame, present: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.Series | None]:
    """Waiting children the ERP no longer has (known on full runs) stop waiting.

    Only upserts: a waiting delete is about a record that is meant to be gone.
    """
    if present is None or waiting.height == 0:
        return waiting, None
    listed = present.get_column(KEY)
    # Probe the (many) listed keys against the (few) waiting ones, not the other way.
    seen = listed.filter(listed.is_in(key_set(waiting.get_column("bk_hash")).implode()))
    is_upsert = pl.col("payload").str.json_path_match("$.op") != DELETE
    gone = is_upsert & ~bk_key().is_in(seen.implode())
    return waiting.filter(~gone), waiting.filter(gone).get_column("bk_hash")


def resolve_step(
    s: SyncSlice, catalog: EntityCatalog, store: StateStore, waiting: pl.DataFrame | None = None
) -> SyncSlice:
    """Plan the sends (deletes, then upserts) and queue children with missing parents.

    ``waiting``: the waiting children to take up (default: all of the entity's).
    """
    began = time.monotonic()
    cfg = catalog[s.entity]
    parents = [p.entity for p in cfg.parents]
    upserts = s.frame
    if waiting is None:
        waiting = store.waiting_pending(s.entity)
    waiting, expired = _drop_gone(waiting, s.present_keys)
    needed = parents_to_look_up(upserts, waiting, parents)
    present = {p: store.existing_keys(p, needed[p]) for p in parents}
    deletes = (
        s.deletes
        if s.deletes is not None
        else pl.DataFrame(schema={"bk_hash": pl.String, "rowversion": pl.Int64})
    )
    fetched = s.fetched_keys if s.fetched_keys is not None else pl.Series("bk_hash", [], pl.String)
    plan = resolve(
        upserts, deletes, waiting, fetched, parents, present, line_expr(catalog, s.entity)
    )
    return s.advance(
        "resolve",
        began,
        frame=s.frame.clear(),  # what goes on is in the plan; drop the mapped records
        plan=plan,
        pending=plan.pending,
        expired=expired,
        metrics={"pending_children": plan.pending.height, "resolved_children": plan.released},
    )
