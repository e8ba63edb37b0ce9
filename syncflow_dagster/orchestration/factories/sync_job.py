"""The job factory: the nine stage ops as one chain per entity."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.orchestration import ops
from syncflow_dagster.orchestration.tags import ENTITY_TAG, RUN_TAGS


def sync_job_name(entity: str) -> str:
    """The job that syncs one entity."""
    return f"sync_{entity}_job"


def _chain(prefix: str | None, after: Sequence[Any] = ()) -> Any:
    """Invoke the nine stage ops in order; node names get ``prefix__`` when given."""

    def node(op: dg.OpDefinition) -> Any:
        return op.alias(f"{prefix}__{op.name}") if prefix else op

    s = node(ops.fetch)(after=list(after)) if after else node(ops.fetch)()
    for op in (
        ops.normalize,
        ops.validate,
        ops.map_fields,
        ops.identity,
        ops.delta,
        ops.resolve,
        ops.ingest,
    ):
        s = node(op)(s)
    return node(ops.track)(s)


def _job_settings() -> dict[str, Any]:
    # The io_manager (in memory) comes with the other resources in Definitions.
    return {"executor_def": dg.in_process_executor}


def build_sync_job(
    cfg: EntityConfig, partitions: dg.PartitionsDefinition | None
) -> dg.JobDefinition:
    """``sync_<entity>_job``: the nine stage ops of one entity, fetch to track."""
    description = f"Sync {cfg.name} from APISmith into ScheduleHub ({cfg.target.entity})."

    @dg.graph(name=sync_job_name(cfg.name), description=description)
    def entity_graph() -> None:
        _chain(None)

    return entity_graph.to_job(
        name=sync_job_name(cfg.name),
        description=description,
        partitions_def=partitions,
        tags={**RUN_TAGS, ENTITY_TAG: cfg.name},
        **_job_settings(),
    )


def retry_job_name(entity: str) -> str:
    """The job that retries one entity's waiting children and refused deletes."""
    return f"retry_{entity}_job"


def build_retry_job(cfg: EntityConfig) -> dg.JobDefinition:
    """``retry_<entity>_job``: send the entity's waiting children whose parents arrived.

    Launched by the sensors (due backoff, a parent's sync succeeded); children
    still missing a parent count an attempt and wait again.
    """
    description = f"Retry the waiting children and refused deletes of {cfg.name}."

    @dg.graph(name=retry_job_name(cfg.name), description=description)
    def retry_graph() -> None:
        ops.retry_pending()

    return retry_graph.to_job(
        name=retry_job_name(cfg.name),
        description=description,
        tags={**RUN_TAGS, ENTITY_TAG: cfg.name},
        **_job_settings(),
    )


def sync_all_run_config(catalog: EntityCatalog, mode: str | None = None) -> dict[str, Any]:
    """Optional run config of ``sync_all_job`` that runs every chain in one ``mode``."""
    if not mode:
        return {}
    return {"ops": {f"{name}__fetch": {"config": {"mode": mode}} for name in catalog.entities}}


def build_sync_all_job(
    catalog: EntityCatalog, partitions: dg.PartitionsDefinition | None
) -> dg.JobDefinition:
    """``sync_all_job``: every entity's chain, each after its parents' chains; then retries.

    Upserts must reach the hub parents first, deletes children first. The chains
    run parent-first, so a parent's delete that the hub refused while children
    still named it waits in pending_children; once every chain is done, a retry
    per entity, children first, sends those deletes (and any child whose parent
    arrived later in the run) again.
    """
    description = "Sync every entity, parents before children; then retry what waited."
    order = catalog.parent_first()

    @dg.graph(name="sync_all", description=description)
    def all_graph() -> None:
        done: dict[str, Any] = {}
        for name in order:
            done[name] = _chain(name, after=[done[p.entity] for p in catalog[name].parents])
        last = list(done.values())
        for name in reversed(order):
            last = [ops.retry_pending.alias(f"{name}__retry_pending")(after=last)]

    return all_graph.to_job(
        name="sync_all_job",
        description=description,
        partitions_def=partitions,
        tags={**RUN_TAGS, ENTITY_TAG: "all"},
        **_job_settings(),
    )
