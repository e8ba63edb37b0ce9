"""Background-sync factories: a job per entity, and the sensor that launches it in its window.

``sync_<entity>_background_job`` works through one night of the entity's
background sync in chunks (one op; the nine stages run inside it per chunk,
so that state and progress are committed chunk by chunk). A night is a daily
partition: the partitions page shows which nights ran, and each run records
the night's progress as metadata.

``background_sync_sensor`` reads the ``background_sync_schedule`` rows on
every tick, so a window, budget or hold changed by the CLI or the API takes
effect without a redeploy; it launches at most one run per entity at a time,
and only inside the entity's window.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from syncflow_dagster.background.launch import Launch, decide
from syncflow_dagster.background.schedules import list_schedules
from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.orchestration import ops
from syncflow_dagster.orchestration.partitions import night_key
from syncflow_dagster.orchestration.resources import (
    BackgroundResource,
    EntityCatalogResource,
    StateStoreResource,
)
from syncflow_dagster.orchestration.tags import ENTITY_TAG, RUN_TAGS, TRIGGER_TAG

BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def background_job_name(entity: str) -> str:
    """The job that works through a night of the entity's background sync."""
    return f"sync_{entity}_background_job"


def build_background_job(
    cfg: EntityConfig, partitions: dg.PartitionsDefinition
) -> dg.JobDefinition:
    """``sync_<entity>_background_job``: one night of the background sync, chunk by chunk."""
    description = f"Sync {cfg.name} in the background: tonight's part, chunk by chunk."

    @dg.graph(name=background_job_name(cfg.name), description=description)
    def background_graph() -> None:
        ops.background_sync()

    return background_graph.to_job(
        name=background_job_name(cfg.name),
        description=description,
        partitions_def=partitions,
        tags={**RUN_TAGS, ENTITY_TAG: cfg.name},
        executor_def=dg.in_process_executor,
    )


def build_background_sensor(
    catalog: EntityCatalog,
    jobs: Mapping[str, dg.JobDefinition],
    partitions: dg.PartitionsDefinition,
    enabled: bool,
    interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """Launch each background sync's runs inside its window, one at a time per entity."""
    night = night_key(partitions)

    @dg.sensor(
        name="background_sync_sensor",
        jobs=list(jobs.values()),
        minimum_interval_seconds=interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED
        ),
        description="Launch the background syncs inside their windows, as their rows say.",
    )
    def background_sync(
        context: dg.SensorEvaluationContext,
        state: StateStoreResource,
        entities: EntityCatalogResource,
        background: BackgroundResource,
    ) -> dg.SensorResult:
        now = datetime.now(UTC)
        requests: list[dg.RunRequest] = []
        skipped: list[str] = []
        for schedule in list_schedules(state.store, entities.catalog, background.defaults):
            entity = schedule.entity
            if entity not in jobs:
                continue
            busy = bool(
                context.instance.get_runs(
                    dg.RunsFilter(tags={ENTITY_TAG: entity}, statuses=BUSY), limit=1
                )
            )
            decision = decide(schedule, now, busy, night)
            if isinstance(decision, Launch):
                requests.append(launch_request(jobs[entity], decision))
            else:
                skipped.append(f"{entity}: {decision}")
        if not requests:
            return dg.SensorResult(skip_reason="; ".join(skipped) or "no background syncs")
        return dg.SensorResult(run_requests=requests)

    return background_sync


def launch_request(job: dg.JobDefinition, launch: Launch) -> dg.RunRequest:
    """The run request of a background night."""
    return dg.RunRequest(
        run_key=launch.run_key,
        job_name=job.name,
        partition_key=launch.night,
        tags={
            ENTITY_TAG: launch.entity,
            TRIGGER_TAG: "background_sync_sensor",
            "dagster/max_runtime": str(launch.max_runtime),
        },
    )
