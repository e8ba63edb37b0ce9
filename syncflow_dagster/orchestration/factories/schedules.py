"""Schedule factories: the nightly background window and a regular cadence.

A nightly entity's job runs every hour inside the background window (e.g.
19:00–07:00 in the ERP's zone, crossing midnight); each run continues the slice
where the last one settled it, so a big table loads over as many runs (and
nights) as it needs. A run gets ``dagster/max_runtime`` up to the window's end,
the last-resort guard against running into the working day.
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from syncflow_dagster.orchestration.tags import ENTITY_TAG, TRIGGER_TAG


def window_hours(start: time, end: time) -> list[int]:
    """The whole hours at which a run may start inside the window [start, end)."""
    first = start.hour + (1 if start.minute or start.second else 0)
    hours, hour = [], first % 24
    for _ in range(24):
        if _inside(time(hour), start, end):
            hours.append(hour)
        hour = (hour + 1) % 24
    return sorted(hours)


def _inside(moment: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def seconds_to_window_end(now: datetime, end: time) -> int:
    """Seconds from ``now`` (aware, ERP zone) to the next time the window closes."""
    closing = now.replace(hour=end.hour, minute=end.minute, second=end.second, microsecond=0)
    if closing <= now:
        closing += timedelta(days=1)
    return int((closing - now).total_seconds())


def _cron(hours: list[int], minute: int = 0) -> str:
    return f"{minute} {','.join(str(h) for h in hours)} * * *"


def build_nightly_schedule(
    job: dg.JobDefinition,
    entity: str,
    timezone: str,
    start: time,
    end: time,
    enabled: bool,
) -> dg.ScheduleDefinition:
    """Hourly runs of ``job`` inside the background window, on the window's partition."""
    partitions = job.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    zone = ZoneInfo(timezone)

    @dg.schedule(
        name=f"{job.name.removesuffix('_job')}_nightly_schedule",
        cron_schedule=_cron(window_hours(start, end)),
        execution_timezone=timezone,
        job=job,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Sync {entity} every hour of the background window "
        f"({start:%H:%M}–{end:%H:%M} {timezone}).",
    )
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        now = (context.scheduled_execution_time or datetime.now(zone)).astimezone(zone)
        key = partitions.get_partition_key_for_timestamp(now.timestamp())
        return dg.RunRequest(
            run_key=f"{entity}-{now.isoformat(timespec='minutes')}",
            partition_key=key,
            tags={
                ENTITY_TAG: entity,
                "dagster/max_runtime": str(seconds_to_window_end(now, end)),
                TRIGGER_TAG: "nightly_schedule",
            },
        )

    return nightly


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
