"""Schedule factories: a regular cadence for an entity's sync.

Nightly (background) entities have no schedule: the ``background_sync_sensor``
launches them inside their windows, as their ``background_sync_schedule``
rows say (:mod:`syncflow_dagster.orchestration.factories.background`).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from syncflow_dagster.orchestration.tags import ENTITY_TAG, TRIGGER_TAG


def build_cadence_schedule(
    job: dg.JobDefinition, entity: str, cron: str, timezone: str, enabled: bool
) -> dg.ScheduleDefinition:
    """Runs of ``job`` on a regular cadence, on the partition of the moment.

    Switched on with the background syncs: the parents of a background entity
    run on a cadence, and its children cannot arrive without them.
    """
    partitions = job.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    zone = ZoneInfo(timezone)

    @dg.schedule(
        name=f"{job.name.removesuffix('_job')}_schedule",
        cron_schedule=cron,
        execution_timezone=timezone,
        job=job,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Sync {entity} on its cadence ({cron}, {timezone}).",
    )
    def cadence(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        now = (context.scheduled_execution_time or datetime.now(zone)).astimezone(zone)
        return dg.RunRequest(
            run_key=f"{entity}-{now.isoformat(timespec='minutes')}",
            partition_key=partitions.get_partition_key_for_timestamp(now.timestamp()),
            tags={ENTITY_TAG: entity, TRIGGER_TAG: "cadence_schedule"},
        )

    return cadence
