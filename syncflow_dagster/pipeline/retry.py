"""A retry batch: no fetch, only the children (and deletes) that waited in pending_children.

Waiting children whose parents are at the hub now are sent; deletes the hub
refused while children still named the record are tried again. Everything
else keeps waiting. The batch is recorded like any other (mode ``retry``),
with the same conservation check.
"""

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.fetch import RunInfo, mapping_identity, present_keys, source_columns
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.lifecycle import fail_batch, open_batch
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.stages.delta import OP
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
) -> SyncSlice:
    """Send what waits and can go now; record the batch.

    With ``source`` given, children waiting to be created are first checked
    against APISmith's key listing: one the ERP deleted meanwhile expires
    instead of being created at the hub when its parent arrives.
    """
    cfg = catalog[entity]
    version = store.register_mapping(entity, mapping_identity(cfg))
    batch = open_batch(
        store,
        entity,
        run.run_id,
        "retry",
        partition_key=run.partition_key,
        mapping_version=version,
        run_status=run.run_status,
        lease_seconds=run.lease_seconds,
    )
    try:
        present = None
        if source is not None and store.count_pending(entity):
            columns = source_columns(catalog, entity, source)
            tz = cfg.source.timezone or default_tz
            present = present_keys(source, cfg, columns, tz).to_frame("bk_hash")
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
        s = resolve_step(s, catalog, store)
        s = ingest_step(s, catalog, hub, store, batch_size, default_tz)
        return track_step(s, catalog, store, default_tz)
    except BaseException as exc:
        fail_batch(store, batch, exc)
        raise
