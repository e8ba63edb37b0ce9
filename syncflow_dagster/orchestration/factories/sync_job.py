"""The job factory: the nine stage ops as one chain per entity."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.orchestration import ops

ENTITY_TAG = "syncflow/entity"
# In-memory hand-over between ops cannot resume from a failed step: retries redo all steps,
# which the watermark and the hub's idempotency make safe (docs/ORCHESTRATION.md).
RUN_TAGS = {"dagster/retry_strategy": "ALL_STEPS"}


def sync_job_name(entity: str) -> str:
    """The job that syncs one entity."""
    return f"sync_{entity}_job"


def _chain(prefix: str | None, after: Sequence[Any] = ()) -> Any:
    """Invoke the nine stage ops in order; node names get ``prefix__`` when given."""

    def node(op: dg.OpDefinition) -> Any:
        return op.alias(f"{prefix}__{op.name}") if prefix else op

    s = node(ops.fetch)(after=list(after)) if after else node(ops.fetch)()
    for op in (ops.normalize, ops.validate, ops.map_fields, ops.identity, ops.delta,
               ops.resolve, ops.ingest):
        s = node(op)(s)
    return node(ops.track)(s)


def _job_settings() -> dict[str, Any]:
    return {
        "executor_def": dg.in_process_executor,
        "resource_defs": {"io_manager": dg.mem_io_manager},
    }


def build_sync_job(
    cfg: EntityConfig, partitions: dg.PartitionsDefinition | None
) -> dg.JobDefinition:
    """``sync_<entity>_job``: fetch → normalize → validate → map → identity → delta → resolve → ingest → track."""
    description = f"Sync {cfg.name} from APISmith into ScheduleHub ({cfg.target.entity})."

    @dg.graph(name=sync_job_name(cfg.name), description=description)
    def entity_graph() -> None:
        _chain(None)

    return entity_graph.to_job(
        name=sync_job_name(cfg.name),
        description=description,
        config={"ops": {"fetch": {"config": {"entity": cfg.name}}}},
        partitions_def=partitions,
        tags={**RUN_TAGS, ENTITY_TAG: cfg.name},
        **_job_settings(),
    )


def build_sync_all_job(
    catalog: EntityCatalog, partitions: dg.PartitionsDefinition | None
) -> dg.JobDefinition:
    """``sync_all_job``: every entity's chain, each starting after its parents' chains finished."""
    description = "Sync every entity, parents before children."

    @dg.graph(name="sync_all", description=description)
    def all_graph() -> None:
        done: dict[str, Any] = {}
        for name in catalog.parent_first():
            done[name] = _chain(name, after=[done[p.entity] for p in catalog[name].parents])

    return all_graph.to_job(
        name="sync_all_job",
        description=description,
        config={
            "ops": {f"{name}__fetch": {"config": {"entity": name}} for name in catalog.entities}
        },
        partitions_def=partitions,
        tags={**RUN_TAGS, ENTITY_TAG: "all"},
        **_job_settings(),
    )
