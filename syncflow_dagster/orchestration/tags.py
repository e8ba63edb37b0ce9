"""Run tags SyncFlow sets and reads."""

ENTITY_TAG = "syncflow/entity"
"""The entity a run syncs (``all`` for ``sync_all_job``); the run queue limits runs per value."""

TRIGGER_TAG = "syncflow/trigger"
"""What launched a run: a schedule, a sensor, the operations API, the demo."""

# In-memory hand-over between ops cannot resume from a failed step: retries redo all steps,
# which the watermark and the hub's idempotency make safe (docs/ORCHESTRATION.md).
RUN_TAGS = {"dagster/retry_strategy": "ALL_STEPS"}
