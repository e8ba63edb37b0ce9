"""The schedules each entity's configuration asks for."""

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.orchestration.factories.schedules import (
    build_cadence_schedule,
    build_nightly_schedule,
)
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.settings import Settings


def sync_schedules(
    catalog: EntityCatalog, jobs: dict[str, dg.JobDefinition], settings: Settings
) -> list[dg.ScheduleDefinition]:
    """A nightly schedule for background entities, a cadence schedule for the others."""
    schedules = []
    for cfg in catalog:
        job = jobs[sync_job_name(cfg.name)]
        if cfg.sync.schedule.nightly:
            schedules.append(
                build_nightly_schedule(
                    job,
                    cfg.name,
                    settings.erp_timezone,
                    settings.background_sync_window_start,
                    settings.background_sync_window_end,
                    settings.background_sync_enabled,
                )
            )
        elif cfg.sync.schedule.cron:
            schedules.append(
                build_cadence_schedule(
                    job,
                    cfg.name,
                    cfg.sync.schedule.cron,
                    settings.erp_timezone,
                    settings.background_sync_enabled,
                )
            )
    return schedules
