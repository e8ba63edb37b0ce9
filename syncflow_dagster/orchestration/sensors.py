"""The sensors SyncFlow ships: retries of waiting children, and batches of dead runs."""

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.orchestration.factories.sensors import (
    build_dead_runs_sensor,
    build_failed_records_sensor,
    build_parent_synced_sensor,
    build_pending_children_sensor,
    build_run_failure_sensor,
)
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.settings import Settings


def sync_sensors(
    catalog: EntityCatalog,
    jobs: dict[str, dg.JobDefinition],
    retry_jobs: dict[str, dg.JobDefinition],
    resolve_job: dg.JobDefinition,
    settings: Settings,
) -> list[dg.SensorDefinition]:
    """Every sensor, switched on when BACKGROUND_SYNC_ENABLED is true."""
    enabled = settings.background_sync_enabled
    interval = settings.sensor_interval_seconds
    sync_by_entity = {name: jobs[sync_job_name(name)] for name in catalog.entities}
    return [
        build_pending_children_sensor(retry_jobs, enabled, interval),
        build_parent_synced_sensor(catalog, sync_by_entity, retry_jobs, enabled, interval),
        build_failed_records_sensor(resolve_job, enabled, interval),
        build_dead_runs_sensor(enabled, interval),
        build_run_failure_sensor(enabled, interval),
    ]
