"""A retry batch: no fetch, only the children (and deletes) that waited in pending_children.

Waiting children whose parents are at the hub now are sent; deletes the hub
refused while children still named the record are tried again. Everything
else keeps waiting. The batch is recorded like any other (mode ``retry``),
with the same conservation check.
"""

from dataclasses import replace
from datetime import datetime

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.fetch import present_keys, source_columns
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.lifecycle import RunInfo, fail_batch, open_run_batch
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.stages.delta import DELETE, OP
from syncflow_dagster.stages.failures import ROW
from syncflow_dagster.stages.mapping import TARGET_DTYPES
from syncflow_dagster.stages.resolve import parent_column


def empty_mapped(catalog: EntityCatalog, entity: str) -> pl.DataFrame:
    """A mapped, hashed frame of the entity with no records."""
    cfg = catalog[entity]
    schema: dict[str, pl.DataType] = {
        ROW: pl.UInt32(),
        "bk_hash": pl.String(),
        "data_hash": pl.String(),
        "rowversion": pl.Int64(),
        OP: pl.String(),
        **{parent_column(p.entity): pl.String() for p in cfg.parents},
        **{f.name: TARGET_DTYPES[f.type] for f in cfg.target.fields},
    }
    return pl.DataFrame(schema=schema)


def retry_pending(
    catalog: EntityCatalog,
    entity: str,
    hub: ScheduleHubClient,
    store: StateStore,
    run: RunInfo,
    batch_size: int,
    default_tz: str,
    source: ApiSmithClient | None = None,
    backoff: Backoff | None = None,
    now: datetime | None = None,
) -> SyncSlice:
    """Send what waits and can go now; count an attempt for what still cannot; record the batch.

    A waiting child goes as soon as its parents are at the hub, whatever its
    backoff. One still missing a parent counts a failed attempt when it was
    due (its backoff elapsed): ``attempts + 1`` and a new ``next_retry_at``;
    a refused delete is sent again only when due, and counts an attempt when
    refused again. After the last attempt (``backoff.max_attempts``) it is
    dead-lettered (``parent_missing`` / ``has_children``, naming what it
    waited for) and stops waiting. With ``source`` given, children waiting to
    be created are first checked against APISmith's key listing: one the ERP
    deleted meanwhile expires instead of being created when its parent arrives.
    """
    backoff = backoff or Backoff()
    now = now or utcnow()
    cfg = catalog[entity]
    batch = open_run_batch(store, cfg, run, "retry")
    try:
        waiting = store.waiting_pending(entity)
        is_delete = pl.col("payload").str.json_path_match("$.op") == DELETE
        due = pl.col("next_retry_at").is_null() | (pl.col("next_retry_at") <= now)
        # A refused delete waits for its backoff; a child goes once its parents are there.
        considered = waiting.filter(~is_delete | due)
        present = None
        if source is not None and considered.filter(~is_delete).height:
            columns = source_columns(catalog, entity, source)
            tz = cfg.source.timezone or default_tz
            present = present_keys(source, cfg, columns, tz).to_frame()
        raw = pl.DataFrame(schema={c: pl.String() for c in cfg.read_columns}).with_row_index(ROW)
        s = SyncSlice(
            entity=entity,
            batch_id=batch.batch_id,
            batch=batch,
            mode="retry",
            source_columns={},
            raw=raw,
            frame=empty_mapped(catalog, entity),
            present_keys=present,
        )
        s = resolve_step(s, catalog, store, waiting=considered)
        s = ingest_step(s, catalog, hub, store, batch_size, default_tz)
        s = _count_attempts(s, considered, due, store, backoff, now)
        return track_step(s, catalog, store, default_tz, backoff)
    except BaseException as exc:
        fail_batch(store, batch, exc)
        raise


def _count_attempts(
    s: SyncSlice,
    considered: pl.DataFrame,
    due: pl.Expr,
    store: StateStore,
    backoff: Backoff,
    now: datetime,
) -> SyncSlice:
    """Record the failed attempts of this retry; dead-letter the children whose attempts are spent.

    Failed: a due child still missing a parent (not released, not expired),
    and any child or delete the hub refused again in this run.
    """
    went = [k for k in (s.released, s.expired) if k is not None]
    gone = pl.concat(went) if went else pl.Series("bk_hash", [], pl.String)
    refused = s.pending.get_column("bk_hash") if s.pending is not None else gone.clear()
    failed = considered.filter(
        (~pl.col("bk_hash").is_in(gone.implode()) & due)
        | pl.col("bk_hash").is_in(refused.implode())
    ).with_columns((pl.col("attempts") + 1).alias("attempts"))
    if failed.height == 0:
        return s
    spent = failed.filter(pl.col("attempts") >= backoff.max_attempts)
    waits = failed.filter(pl.col("attempts") < backoff.max_attempts)
    retry_at = [backoff.next_retry_at(now, int(n)) for n in waits.get_column("attempts")]
    store.record_pending_attempts(
        s.entity,
        waits.select("bk_hash", "attempts").with_columns(
            pl.Series("next_retry_at", retry_at, dtype=pl.Datetime("us", "UTC"))
        ),
        now,
    )
    if spent.height == 0:
        return s
    op = pl.col("payload").str.json_path_match("$.op")
    letters = spent.select(
        "bk_hash",
        pl.col("rowversion").cast(pl.Int64),
        pl.lit("retry").alias("stage"),
        pl.when(op == DELETE)
        .then(pl.lit("has_children"))
        .otherwise(pl.lit("parent_missing"))
        .alias("code"),
        pl.format(
            "gave up after {} attempts; still waiting for {}",
            pl.col("attempts"),
            pl.col("waiting_for"),
        ).alias("detail"),
        pl.col("payload").str.json_path_match("$.data").alias("mapped"),
        pl.lit("permanent").alias("error_kind"),
    )
    store.dead_letter_pending(s.entity, spent.get_column("bk_hash"))
    store.add_failed(s.batch_id, s.entity, letters)
    keep = (
        s.pending.filter(~pl.col("bk_hash").is_in(spent.get_column("bk_hash").implode()))
        if s.pending is not None
        else None
    )
    return replace(
        s,
        pending=keep,
        metrics={**s.metrics, "expired_children": s.metrics["expired_children"] + spent.height},
    )
