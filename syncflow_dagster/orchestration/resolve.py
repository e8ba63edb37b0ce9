"""``resolve_failed_records_job``: the dead-letter queue's actions, launched from Dagster.

The same actions as ``syncflow failed retry|resolve|discard``: dead letters
chosen by id and/or filter are retried through the stages (one retry batch
per entity), resolved, or discarded, and each row records the action with its
reason. The job refuses to act when it names neither ids nor a filter.

Launchpad config, for example::

    ops:
      resolve_failed_records:
        config:
          action: retry
          entity: items
          kind: transient
          reason: ScheduleHub is back
"""

from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from syncflow_dagster.orchestration.ops import run_info
from syncflow_dagster.orchestration.resources import (
    ApiSmithResource,
    EntityCatalogResource,
    ScheduleHubResource,
    StateStoreResource,
)
from syncflow_dagster.pipeline.redo import redo_failed

ACTION_LIMIT = 10_000
"""Letters one run takes up at most (a filter matching more: run the job again)."""

JOB_NAME = "resolve_failed_records_job"


class FailedAction(Enum):
    """What to do with the chosen dead letters."""

    retry = "retry"
    resolve = "resolve"
    discard = "discard"


class ResolveFailedConfig(dg.Config):
    """Which dead letters (ids and/or filters), and what to do with them."""

    ids: list[int] = Field(default=[], description="dead-letter ids (any status)")
    entity: str | None = Field(default=None, description="only letters of this entity")
    stage: str | None = Field(default=None, description="only letters of this stage")
    code: str | None = Field(default=None, description="only letters with this failure code")
    kind: str | None = Field(
        default=None, description="only letters of this kind: transient, permanent, configuration"
    )
    batch_id: int | None = Field(default=None, description="only letters of this batch")
    action: FailedAction = Field(
        description="retry: through the stages again; resolve: the cause was fixed; "
        "discard: not worth delivering"
    )
    reason: str = Field(default="", description="why (recorded on every letter)")


def _filters(config: ResolveFailedConfig) -> dict[str, Any]:
    given = {
        "entity": config.entity,
        "stage": config.stage,
        "code": config.code,
        "kind": config.kind,
        "batch_id": config.batch_id,
    }
    return {name: value for name, value in given.items() if value not in (None, "")}


@dg.op(tags={"syncflow/stage": "resolve_failed"})
def resolve_failed_records(
    context: dg.OpExecutionContext,
    config: ResolveFailedConfig,
    apismith: ApiSmithResource,
    schedulehub: ScheduleHubResource,
    state: StateStoreResource,
    entities: EntityCatalogResource,
) -> None:
    """Retry, resolve or discard the chosen dead letters; record the reason on each."""
    filters = _filters(config)
    if not config.ids and not filters:
        raise dg.Failure(
            "name dead-letter ids or at least one filter (entity, stage, code, kind, batch_id): "
            "refusing to act on every dead letter"
        )
    store = state.store
    try:
        # Named ids are taken whatever their status (closed ones are reported, not
        # changed); letters chosen by filter must be open.
        status = "open" if filters else None
        letters = store.list_failed(
            status=status, ids=config.ids or None, limit=ACTION_LIMIT + 1, **filters
        )
    except ValueError as exc:  # e.g. an unknown kind
        raise dg.Failure(str(exc)) from None
    more = letters.height > ACTION_LIMIT
    chosen = letters.head(ACTION_LIMIT).get_column("id").to_list()
    missing = sorted(set(config.ids) - set(chosen)) if not more else []
    reason = config.reason or f"{JOB_NAME} run {context.run_id}"
    action = config.action
    if more:
        context.log.warning(
            "more than %d dead letters match: this run takes the first %d; run the job again",
            ACTION_LIMIT,
            ACTION_LIMIT,
        )
    if action is FailedAction.retry:
        out = redo_failed(
            entities.catalog,
            chosen + missing,
            schedulehub.client,
            store,
            run_info(context, state),
            entities.erp_timezone,
            schedulehub.batch_size,
            source=apismith.client,
            backoff=state.backoff(),
            reason=reason,
        )
        context.add_output_metadata(
            {
                "action": action.value,
                "letters": len(out.letters),
                **{f"letters_{k}": v for k, v in out.counts().items()},
                "batches": dg.MetadataValue.json(
                    [
                        {"entity": b.entity, "batch_id": b.batch_id, "error": b.error}
                        for b in out.batches
                    ]
                ),
            }
        )
        context.log.info("retry of dead letters: %s", out.summary())
        if not out.ok:
            raise dg.Failure(
                f"retry of dead letters: {out.summary()}",
                metadata={"counts": dg.MetadataValue.json(out.counts())},
            )
        return
    if action is FailedAction.resolve:
        changed = store.resolve_failed(chosen, reason)
    else:
        changed = store.discard_failed(chosen, reason)
    skipped = sorted(set(chosen) - set(changed))
    context.add_output_metadata(
        {
            "action": action.value,
            "changed": len(changed),
            "skipped": len(skipped),
            "missing": len(missing),
            "ids_changed": dg.MetadataValue.json(changed),
        }
    )
    context.log.info(
        "%s: %d dead letter(s) changed, %d left as they were (not open), %d not found",
        action.value,
        len(changed),
        len(skipped),
        len(missing),
    )


@dg.job(
    name=JOB_NAME,
    description="Retry, resolve or discard dead letters chosen by id or filter, with a reason.",
)
def resolve_failed_records_job() -> None:
    """Retry, resolve or discard dead letters chosen by id or filter, with a reason."""
    resolve_failed_records()
