"""The schedules each entity's configuration asks for."""

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.orchestration.factories.schedules import build_cadence_schedule
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.settings import Settings


def sync_schedules(
    catalog: EntityCatalog, jobs: dict[str, dg.JobDefinition], settings: Settings
) -> list[dg.ScheduleDefinition]:
    """A cadence schedule for every entity with ``schedule: {cron: …}``.

    Nightly entities are launched by the background sensor, not a schedule.
    """
    return [
        build_cadence_schedule(
            jobs[sync_job_name(cfg.name)],
            cfg.name,
            cfg.sync.schedule.cron,
            settings.erp_timezone,
            settings.background_sync_enabled,
        )
        for cfg in catalog
        if cfg.sync.schedule.cron
    ]
