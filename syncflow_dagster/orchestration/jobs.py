"""The sync jobs: one per configured entity, and one for all of them."""

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.orchestration.factories.background import build_background_job
from syncflow_dagster.orchestration.factories.sync_job import (
    build_retry_job,
    build_sync_all_job,
    build_sync_job,
)


def sync_jobs(
    catalog: EntityCatalog, partitions: dg.PartitionsDefinition
) -> list[dg.JobDefinition]:
    """``sync_<entity>_job`` for every entity (parent-first), then ``sync_all_job``."""
    jobs = [build_sync_job(cfg, partitions) for cfg in catalog]
    return [*jobs, build_sync_all_job(catalog, partitions)]


def background_jobs(
    catalog: EntityCatalog, partitions: dg.PartitionsDefinition
) -> dict[str, dg.JobDefinition]:
    """``sync_<entity>_background_job`` for every entity, by entity."""
    return {cfg.name: build_background_job(cfg, partitions) for cfg in catalog}


def retry_jobs(catalog: EntityCatalog) -> dict[str, dg.JobDefinition]:
    """``retry_<entity>_job`` for every entity, by entity."""
    return {cfg.name: build_retry_job(cfg) for cfg in catalog}
