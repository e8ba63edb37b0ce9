"""Assemble the one Definitions object from the settings and the entity catalog."""

import os
from typing import Any

import dagster as dg

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.orchestration.factories.background import build_background_sensor
from syncflow_dagster.orchestration.io_managers import hand_off_io_manager
from syncflow_dagster.orchestration.jobs import background_jobs, retry_jobs, sync_jobs
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.orchestration.resolve import resolve_failed_records_job
from syncflow_dagster.orchestration.resources import (
    ApiSmithResource,
    BackgroundResource,
    EntityCatalogResource,
    ScheduleHubResource,
    StateStoreResource,
)
from syncflow_dagster.orchestration.schedules import sync_schedules
from syncflow_dagster.orchestration.sensors import sync_sensors
from syncflow_dagster.settings import Settings

SECRET_SETTINGS = ("APISMITH_TOKEN", "SCHEDULEHUB_TOKEN", "DATABASE_URL", "POSTGRES_PASSWORD")


def publish_secrets(settings: Settings) -> None:
    """Put the settings' secrets into this process's environment, for ``EnvVar``.

    The settings are the one source (environment, ``.env``, or explicit values);
    the resources name the secrets as ``EnvVar`` so that their values never enter
    run config or the event log, and an ``EnvVar`` reads ``os.environ``.
    """
    for name in SECRET_SETTINGS:
        value = getattr(settings, name.lower())
        if value is not None:
            os.environ[name] = value.get_secret_value()


def build_resources(settings: Settings) -> dict[str, Any]:
    """The resources every job uses, from the settings; secrets through EnvVar."""
    publish_secrets(settings)
    retry: dict[str, Any] = {
        "max_retries": settings.max_retries,
        "retry_delay_seconds": settings.retry_delay_seconds,
        "max_retry_delay_seconds": settings.max_retry_delay_seconds,
        "connect_grace_seconds": settings.connect_grace_seconds,
    }
    return {
        # DataFrames pass between ops in memory: see docs/ORCHESTRATION.md for why.
        "io_manager": hand_off_io_manager,
        "apismith": ApiSmithResource(
            url=settings.apismith_url, token=dg.EnvVar("APISMITH_TOKEN"), **retry
        ),
        "schedulehub": ScheduleHubResource(
            url=settings.schedulehub_url,
            token=dg.EnvVar("SCHEDULEHUB_TOKEN"),
            batch_size=settings.default_batch_size,
            workers=settings.sync_worker_threads,
            **retry,
        ),
        "state": StateStoreResource(
            database_url=dg.EnvVar("DATABASE_URL") if settings.database_url else None,
            postgres_host=settings.postgres_host,
            postgres_port=settings.postgres_port,
            postgres_db=settings.postgres_db,
            postgres_user=settings.postgres_user,
            postgres_password=dg.EnvVar("POSTGRES_PASSWORD")
            if settings.postgres_password
            else None,
            sqlite_url=settings.sqlite_url,
            pool_size=settings.postgres_pool_size,
            lease_seconds=settings.run_lease_seconds,
            retry_delay_seconds=settings.retry_delay_seconds,
            max_retry_delay_seconds=settings.max_retry_delay_seconds,
            retry_max_attempts=settings.retry_max_attempts,
        ),
        "entities": EntityCatalogResource(
            config_dir=str(settings.entities_dir), erp_timezone=settings.erp_timezone
        ),
        "background": BackgroundResource(
            window_start=settings.background_sync_window_start.strftime("%H:%M"),
            window_end=settings.background_sync_window_end.strftime("%H:%M"),
            timezone=settings.erp_timezone,
            rows_per_night=settings.background_rows_per_night,
            chunk_rows=settings.background_chunk_rows,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every job, schedule, sensor and resource of SyncFlow."""
    catalog = load_catalog(settings.entities_dir)
    partitions = nightly_partitions(settings.erp_timezone, settings.background_sync_window_start)
    jobs = sync_jobs(catalog, partitions)
    retries = retry_jobs(catalog)
    background = background_jobs(catalog, partitions)
    by_name = {job.name: job for job in jobs}
    sensors = [
        *sync_sensors(catalog, by_name, retries, resolve_failed_records_job, settings),
        build_background_sensor(
            catalog,
            background,
            partitions,
            settings.background_sync_enabled,
            settings.sensor_interval_seconds,
        ),
    ]
    return dg.Definitions(
        jobs=[*jobs, *retries.values(), *background.values(), resolve_failed_records_job],
        schedules=sync_schedules(catalog, by_name, settings),
        sensors=sensors,
        resources=build_resources(settings),
    )
