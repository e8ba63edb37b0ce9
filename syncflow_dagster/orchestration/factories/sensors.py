"""Sensor factories: retries that close out by themselves, and dead runs that close their batch.

* ``pending_children_sensor`` launches ``retry_<entity>_job`` for every entity
  with waiting children that are due (their backoff elapsed).
* ``parent_synced_sensor`` launches the children's retry as soon as a parent
  entity's sync succeeds, instead of at their next backoff.
* ``dead_runs_sensor`` closes the batches of runs that ended without closing
  them (failed, canceled, killed): it asks Dagster for each running batch's
  run and the state store for its lease.
* ``batch_on_run_failure_sensor`` closes a failed run's batch the moment
  Dagster records the failure, with the failure's kind.

Each ships switched on when BACKGROUND_SYNC_ENABLED is true. Sensor queries
are bounded (a page of due rows per tick, a cursor that moves through them),
so a tick stays far below Dagster's 60 s evaluation limit.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg
import orjson
import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.orchestration.resources import StateStoreResource
from syncflow_dagster.orchestration.tags import ENTITY_TAG, TRIGGER_TAG
from syncflow_dagster.pipeline.lifecycle import (
    close_dead_batches,
    died_unseen,
    fail_batch_of_run,
)

DUE_PAGE = 1000
"""Due waiting children read per tick; the cursor moves on through a longer queue."""


def read_cursor(context: dg.SensorEvaluationContext) -> int:
    """The id after which this tick reads due rows (0: from the start)."""
    return int(orjson.loads(context.cursor)["after"]) if context.cursor else 0


def next_cursor(due: pl.DataFrame) -> str:
    """A full page: read on from its last row next tick; else start over."""
    after = int(due.get_column("id").max() or 0) if due.height == DUE_PAGE else 0  # type: ignore[arg-type]
    return orjson.dumps({"after": after}).decode()


def _status(enabled: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED


def _retry_request(job: dg.JobDefinition, entity: str, run_key: str, why: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        job_name=job.name,
        tags={ENTITY_TAG: entity, TRIGGER_TAG: why},
    )


def build_pending_children_sensor(
    retry_jobs: Mapping[str, dg.JobDefinition], enabled: bool, interval_seconds: int = 30
) -> dg.SensorDefinition:
    """Launch a retry run per entity whose waiting children are due."""

    @dg.sensor(
        name="pending_children_sensor",
        jobs=list(retry_jobs.values()),
        minimum_interval_seconds=interval_seconds,
        default_status=_status(enabled),
        description="Retry waiting children whose backoff has elapsed (one run per entity).",
    )
    def pending_children(
        context: dg.SensorEvaluationContext, state: StateStoreResource
    ) -> dg.SensorResult:
        due = state.store.due_pending(
            datetime.now(UTC), limit=DUE_PAGE, after_id=read_cursor(context)
        )
        requests = []
        if due.height:
            by_entity = due.group_by("entity").agg(
                pl.len().alias("n"), pl.col("updated_at").max().alias("changed")
            )
            for entity, n, changed in by_entity.sort("entity").iter_rows():
                if entity not in retry_jobs:
                    continue
                # One run per state of the queue: the same due rows never launch twice; a
                # retry that tried them again moves updated_at, so they can come due again.
                key = f"pending:{entity}:{changed.isoformat()}"
                requests.append(
                    _retry_request(retry_jobs[entity], entity, key, "pending_children_sensor")
                )
                context.log.info("%s: %d waiting children due, retry requested", entity, n)
        return dg.SensorResult(run_requests=requests, cursor=next_cursor(due))

    return pending_children


def build_parent_synced_sensor(
    catalog: EntityCatalog,
    sync_jobs: Mapping[str, dg.JobDefinition],
    retry_jobs: Mapping[str, dg.JobDefinition],
    enabled: bool,
    interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """When a parent entity's sync succeeds, retry its children's waiting rows at once."""
    parents = [name for name in catalog.entities if catalog.children_of(name)]

    @dg.run_status_sensor(
        name="parent_synced_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[sync_jobs[p] for p in parents],
        request_jobs=list(retry_jobs.values()),
        minimum_interval_seconds=interval_seconds,
        default_status=_status(enabled),
        description="When a parent entity's sync succeeds, retry its waiting children at once.",
    )
    def parent_synced(
        context: dg.RunStatusSensorContext, state: StateStoreResource
    ) -> list[dg.RunRequest]:
        parent = context.dagster_run.tags.get(ENTITY_TAG)
        if parent is None or parent not in catalog.entities:
            return []
        requests = []
        for child in catalog.children_of(parent):
            if state.store.count_pending(child):
                key = f"parent-synced:{child}:{context.dagster_run.run_id}"
                requests.append(_retry_request(retry_jobs[child], child, key, "parent_synced"))
        return requests

    return parent_synced


def build_dead_runs_sensor(enabled: bool, interval_seconds: int = 30) -> dg.SensorDefinition:
    """Close the batches of runs that are over without having closed them."""

    @dg.sensor(
        name="dead_runs_sensor",
        minimum_interval_seconds=interval_seconds,
        default_status=_status(enabled),
        description="Close the batches of runs that failed, were canceled or were killed.",
    )
    def dead_runs(context: dg.SensorEvaluationContext, state: StateStoreResource) -> dg.SkipReason:
        instance = context.instance

        def run_status(run_id: str) -> str | None:
            run = instance.get_run_by_id(run_id)
            return None if run is None else run.status.value

        closed = close_dead_batches(state.store, run_status)
        # Dagster cannot see that a run executed outside a launcher died: it stays STARTED
        # and holds its entity's place in the run queue. Its abandoned batch says it is gone.
        failed = []
        started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        for run in instance.get_runs(filters=started, limit=200):
            why = died_unseen(state.store, run.run_id)
            if why is not None:
                instance.report_run_failed(run, message=f"SyncFlow: {why}")
                failed.append(run.run_id)
        if closed or failed:
            return dg.SkipReason(f"closed the batches {closed}; failed the dead runs {failed}")
        return dg.SkipReason("no dead runs")

    return dead_runs


def build_run_failure_sensor(enabled: bool, interval_seconds: int = 30) -> dg.SensorDefinition:
    """Close a failed run's batch as soon as Dagster records the failure."""

    @dg.run_failure_sensor(
        name="batch_on_run_failure_sensor",
        minimum_interval_seconds=interval_seconds,
        default_status=_status(enabled),
        description="Close the batch of a failed run at once, recording the failure's kind.",
    )
    def on_failure(context: dg.RunFailureSensorContext, state: StateStoreResource) -> None:
        event = context.failure_event
        error = event.message or "the run failed"
        data = event.event_specific_data
        cls = getattr(getattr(data, "error", None), "cls_name", None)
        closed = fail_batch_of_run(state.store, context.dagster_run.run_id, error, cls)
        if closed:
            context.log.info("closed batch(es) %s of failed run", closed)

    return on_failure


def build_failed_records_sensor(
    resolve_job: dg.JobDefinition, enabled: bool, interval_seconds: int = 30
) -> dg.SensorDefinition:
    """Retry dead letters that failed for a transient reason, once their backoff elapsed."""

    @dg.sensor(
        name="failed_records_sensor",
        job=resolve_job,
        minimum_interval_seconds=interval_seconds,
        default_status=_status(enabled),
        description="Retry dead letters that failed for a transient reason (the hub was down).",
    )
    def failed_records(
        context: dg.SensorEvaluationContext, state: StateStoreResource
    ) -> dg.SensorResult:
        due = state.store.due_failed(
            datetime.now(UTC), limit=DUE_PAGE, after_id=read_cursor(context), kind="transient"
        )
        requests = []
        for (entity,), letters in sorted(due.group_by("entity")):
            ids = sorted(letters.get_column("id").to_list())
            # The same letters at the same attempt never launch twice.
            attempts = int(letters.get_column("attempts").sum())
            requests.append(
                dg.RunRequest(
                    run_key=f"failed:{entity}:{ids[0]}-{ids[-1]}:{len(ids)}:{attempts}",
                    job_name=resolve_job.name,
                    run_config={
                        "ops": {
                            "resolve_failed_records": {
                                "config": {
                                    "ids": ids,
                                    "action": "retry",
                                    "reason": "failed_records_sensor: transient failure, "
                                    "backoff elapsed",
                                }
                            }
                        }
                    },
                    tags={ENTITY_TAG: str(entity), TRIGGER_TAG: "failed_records_sensor"},
                )
            )
            context.log.info("%s: %d transient dead letters due, retry requested", entity, len(ids))
        return dg.SensorResult(run_requests=requests, cursor=next_cursor(due))

    return failed_records
