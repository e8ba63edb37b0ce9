"""The nine generic stage ops, and the retry op.

Each op reads through a resource, runs one pipeline step and attaches counts.
The entity comes from the job's definition, never from run config (see
:func:`entity_of`), and travels in the slice; the run config is optional (a
mode, a row limit). If a step fails, the batch is closed as failed (with the
error's kind) before the error surfaces.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import dagster as dg

from syncflow_dagster.background.runner import BackgroundRun, NightResult, run_night
from syncflow_dagster.background.schedules import get_schedule
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.errors import error_kind
from syncflow_dagster.orchestration.heap import keep_out_of_collector, let_back_into_collector
from syncflow_dagster.orchestration.partitions import night_key
from syncflow_dagster.orchestration.resources import (
    ApiSmithResource,
    BackgroundResource,
    EntityCatalogResource,
    ScheduleHubResource,
    StateStoreResource,
)
from syncflow_dagster.orchestration.tags import ENTITY_TAG
from syncflow_dagster.pipeline.delta import delta_step
from syncflow_dagster.pipeline.fetch import fetch_step
from syncflow_dagster.pipeline.identity import identity_step
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.lifecycle import RunInfo, fail_batch
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.retry import retry_pending as retry_pending_step
from syncflow_dagster.pipeline.slice import Mode, SyncSlice
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.pipeline.transform import (
    check_against_hub,
    map_step,
    normalize_step,
    validate_step,
)


class RunMode(Enum):
    """How a run reads the ERP.

    ``configured``: the entity's default; ``incremental``: rows above the
    watermark; ``full``: everything (hash-compare and delete detection).
    """

    configured = "configured"
    incremental = "incremental"
    full = "full"


class CompareMode(Enum):
    """What settles a record the hub has.

    ``configured``: the entity's ``sync.compare``; ``rowversion``: an equal
    rowversion; ``data_hash``: only an equal data hash (every record read is
    mapped and compared again — for a rowversion that cannot be trusted).
    """

    configured = "configured"
    rowversion = "rowversion"
    data_hash = "data_hash"


class FetchConfig(dg.Config):
    """How this run reads; every field may be left out (the job knows its entity)."""

    mode: RunMode = RunMode.configured
    max_rows: int | None = None
    compare: CompareMode = CompareMode.configured


def entity_of(context: dg.OpExecutionContext) -> str:
    """The entity this op works on, from the job's definition.

    In ``sync_all_job`` every chain's ops are named ``<entity>__<op>``; an
    entity's own job carries its entity as a definition tag.
    """
    name = context.op_handle.name
    if "__" in name:
        return name.split("__", 1)[0]
    entity = context.job_def.tags.get(ENTITY_TAG)
    if not entity:
        raise dg.Failure(f"job {context.job_def.name} names no entity (tag {ENTITY_TAG})")
    return str(entity)


def run_info(context: dg.OpExecutionContext, state: StateStoreResource) -> RunInfo:
    """The run as the pipeline sees it: id, partition, its window's start, run statuses."""
    partition = context.partition_key if context.has_partition_key else None
    day_start = context.partition_time_window.start if partition is not None else None
    instance = context.instance

    def run_status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        return None if run is None else run.status.value

    return RunInfo(context.run_id, partition, day_start, run_status, state.lease_seconds)


RETRY_ON_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


def retry_if_transient(context: dg.OpExecutionContext, exc: BaseException) -> None:
    """Let Dagster's run retries take a run that failed for a transient reason.

    The instances retry runs whose worker died, never op failures by default
    (``retry_on_asset_or_op_failure: false``): a configuration or data error
    would fail the same way again. A transient failure (a server down after
    the client's own retries, another run holding the entity) tags its run so
    that the daemon retries it.
    """
    if error_kind(exc) == "transient":
        context.instance.add_run_tags(context.run_id, {RETRY_ON_FAILURE_TAG: "true"})


@contextmanager
def failing_batch(
    context: dg.OpExecutionContext, store: StateStore, s: SyncSlice
) -> Iterator[None]:
    """Close the slice's batch as failed if the step raises, then let the error go on."""
    try:
        yield
    except BaseException as exc:
        if s.batch is not None:
            fail_batch(store, s.batch, exc, s.metrics, s.since_rowversion)
        retry_if_transient(context, exc)
        raise


def _present(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata without the entries that have no value (Dagster would show them as null)."""
    return {k: v for k, v in metadata.items() if v is not None}


def batch_label(entity: str, batch_id: int | None) -> str:
    """How a batch is named to the user: batch ids count across all entities."""
    return f"{entity}, batch #{batch_id}"


def _counts(context: dg.OpExecutionContext, s: SyncSlice, stage: str, **extra: int) -> None:
    context.add_output_metadata(
        _present(
            {
                "entity": s.entity,
                "batch_id": s.batch_id,
                "records": s.frame.height,
                "seconds": round(s.stage_seconds.get(stage, 0.0), 3),
                **extra,
            }
        )
    )


@dg.op(ins={"after": dg.In(dg.Nothing)}, tags={"syncflow/stage": "fetch"})
def fetch(
    context: dg.OpExecutionContext,
    config: FetchConfig,
    apismith: ApiSmithResource,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Open a batch, read the entity's records from APISmith and find what the ERP deleted."""
    catalog = entities.catalog
    entity = entity_of(context)
    if entity not in catalog.entities:
        raise dg.Failure(f"entity '{entity}' is not configured ({', '.join(catalog.entities)})")
    keep_out_of_collector()
    mode: Mode = (
        catalog[entity].sync.mode
        if config.mode is RunMode.configured
        else "full"
        if config.mode is RunMode.full
        else "incremental"
    )
    try:
        s = fetch_step(
            catalog,
            entity,
            apismith.client,
            state.store,
            run_info(context, state),
            mode,
            entities.erp_timezone,
            max_rows=config.max_rows,
            hub=schedulehub.client,
            compare=None if config.compare is CompareMode.configured else config.compare.value,
        )
    except BaseException as exc:
        retry_if_transient(context, exc)
        raise
    _counts(
        context,
        s,
        "fetch",
        fetched=s.metrics["fetched"],
        settled=s.settled,
        truncated=int(s.truncated),
    )
    return s


@dg.op(tags={"syncflow/stage": "normalize"})
def normalize(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Parse every ERP value into its type; unreadable values dead-letter their record."""
    with failing_batch(context, state.store, s):
        out = normalize_step(s, entities.catalog, entities.erp_timezone)
    _counts(context, out, "normalize", failed=out.metrics["normalize_failed"])
    return out


@dg.op(tags={"syncflow/stage": "validate"})
def validate(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Apply the entity's rules; records that break one are dead-lettered."""
    with failing_batch(context, state.store, s):
        out = validate_step(s, entities.catalog, entities.erp_timezone)
    _counts(context, out, "validate", failed=out.metrics["validation_failed"])
    return out


@dg.op(name="map", tags={"syncflow/stage": "map"})
def map_fields(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Make the hub's fields, after checking the mapping against the hub's schema."""
    with failing_batch(context, state.store, s):
        required = check_against_hub(entities.catalog, s.entity, schedulehub.client.entities())
        out = map_step(s, entities.catalog, entities.erp_timezone, required)
    _counts(context, out, "map", failed=out.metrics["map_failed"])
    return out


@dg.op(tags={"syncflow/stage": "identity"})
def identity(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Compute BK_HASH and DATA_HASH of every record, and its parents' BK_HASHes."""
    with failing_batch(context, state.store, s):
        out = identity_step(s, entities.catalog)
    _counts(context, out, "identity")
    return out


@dg.op(tags={"syncflow/stage": "delta"})
def delta(context: dg.OpExecutionContext, s: SyncSlice, state: StateStoreResource) -> SyncSlice:
    """Compare with the sync state: inserts, updates, unchanged (never sent) and deletes."""
    with failing_batch(context, state.store, s):
        out = delta_step(s, state.store)
    _counts(
        context, out, "delta", unchanged=out.metrics["unchanged"], deletes=out.delete_candidates
    )
    return out


@dg.op(tags={"syncflow/stage": "resolve"})
def resolve(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Order the sends and hold back children whose parents are not at the hub yet."""
    with failing_batch(context, state.store, s):
        out = resolve_step(s, entities.catalog, state.store)
    assert out.plan is not None
    _counts(
        context,
        out,
        "resolve",
        to_send=out.plan.send.height,
        pending=out.metrics["pending_children"],
        released=out.metrics["resolved_children"],
    )
    return out


@dg.op(tags={"syncflow/stage": "ingest"})
def ingest(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> SyncSlice:
    """Send the changes to ScheduleHub; record state only for what it acknowledged."""
    batch_size = min(entities.catalog[s.entity].sync.batch_size or schedulehub.batch_size, 1000)
    with failing_batch(context, state.store, s):
        out = ingest_step(
            s, entities.catalog, schedulehub.client, state.store, batch_size, entities.erp_timezone
        )
    m = out.metrics
    _counts(
        context,
        out,
        "ingest",
        ingested=m["ingested"],
        inserted=m["inserted"],
        updated=m["updated"],
        deleted=m["deleted"],
        ingest_failed=m["ingest_failed"],
    )
    return out


@dg.op(out=dg.Out(dg.Nothing), tags={"syncflow/stage": "track"})
def track(
    context: dg.OpExecutionContext,
    s: SyncSlice,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> None:
    """Record the batch, check that every record landed in exactly one bucket, and chart it."""
    try:
        with failing_batch(context, state.store, s):
            out = track_step(
                s, entities.catalog, state.store, entities.erp_timezone, state.backoff()
            )
        metrics = dict(out.metrics)
        partition = context.partition_key if context.has_partition_key else None
        context.log_event(
            dg.AssetMaterialization(
                asset_key=dg.AssetKey(["schedulehub", s.entity]),
                partition=partition,
                description=batch_label(s.entity, s.batch_id),
                metadata={
                    **metrics,
                    "batch_id": s.batch_id,
                    "mode": s.mode,
                    "stage_seconds": dg.MetadataValue.json(
                        {k: round(v, 4) for k, v in out.stage_seconds.items()}
                    ),
                },
            )
        )
        context.add_output_metadata(
            _present(
                {
                    **metrics,
                    "batch_id": s.batch_id,
                    "stage_seconds": dg.MetadataValue.json(
                        {k: round(v, 4) for k, v in out.stage_seconds.items()}
                    ),
                }
            )
        )
        context.log.info(
            "%s: %s",
            batch_label(s.entity, s.batch_id),
            ", ".join(f"{k}={v}" for k, v in metrics.items()),
        )
    finally:
        let_back_into_collector()


@dg.op(ins={"after": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing), tags={"syncflow/stage": "retry"})
def retry_pending(
    context: dg.OpExecutionContext,
    apismith: ApiSmithResource,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> None:
    """Send the entity's waiting children whose parents have arrived, and refused deletes again."""
    catalog = entities.catalog
    entity = entity_of(context)
    batch_size = min(catalog[entity].sync.batch_size or schedulehub.batch_size, 1000)
    try:
        out = retry_pending_step(
            catalog,
            entity,
            schedulehub.client,
            state.store,
            run_info(context, state),
            batch_size,
            entities.erp_timezone,
            source=apismith.client,
            backoff=state.backoff(),
        )
    except BaseException as exc:
        retry_if_transient(context, exc)
        raise
    context.add_output_metadata(
        _present({**out.metrics, "entity": out.entity, "batch_id": out.batch_id})
    )


@dg.op(out=dg.Out(dg.Nothing), tags={"syncflow/stage": "background"})
def background_sync(
    context: dg.OpExecutionContext,
    apismith: ApiSmithResource,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
    background: BackgroundResource,
) -> None:
    """Work through tonight's part of the entity's background sync, chunk by chunk."""
    entity = entity_of(context)
    catalog = entities.catalog
    run = run_info(context, state)
    night = run.partition_key or night_key(context.job_def.partitions_def)(datetime.now(UTC))
    batch_size = min(catalog[entity].sync.batch_size or schedulehub.batch_size, 1000)

    def progress(result: NightResult) -> None:
        context.log.info(
            "%s: chunk %d done (%s rows this run, %.1f s)",
            entity,
            result.chunks,
            f"{result.rows:,}",
            result.chunk_seconds[-1],
        )

    job = BackgroundRun(
        catalog,
        apismith.client,
        schedulehub.client,
        state.store,
        background.defaults,
        entities.erp_timezone,
        run,
        batch_size,
        state.backoff(),
        on_chunk=progress,
    )
    try:
        result = run_night(job, entity, night)
    except BaseException as exc:
        retry_if_transient(context, exc)
        raise
    schedule = get_schedule(state.store, catalog, background.defaults, entity)
    row = schedule.row
    figures: dict[str, Any] = {
        "status": result.status,
        "reason": result.reason,
        "rows_this_run": result.rows,
        "rows_this_night": row.night_rows,
        "rows_done": row.rows_done,
        "rows_total": row.rows_total if row.rows_total is not None else "unknown",
        "nights_used": row.nights_used,
        "nights_left": schedule.nights_left if schedule.nights_left is not None else "unknown",
        "chunks": result.chunks,
        "seconds_per_chunk": dg.MetadataValue.json([round(t, 2) for t in result.chunk_seconds]),
    }
    if result.batch_id is not None:
        figures["batch_id"] = result.batch_id
    context.log_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["schedulehub", entity]),
            partition=night,
            description=f"{entity}: background night {night}, {result.status}",
            metadata=_present(figures),
        )
    )
    context.log.info("%s background night %s: %s (%s)", entity, night, result.status, result.reason)
