"""What the API reads from the state database that the store has no method for.

Aggregates over the state tables (totals per entity, counts by status, a
duration histogram), a filtered page of batches, and the purge of an
entity's state when its configuration is deleted with ``purge=true``. All
of it is SQLAlchemy Core over the store's own tables and engine.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, select

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.tables import (
    background_sync_schedule,
    erp_sync_state,
    failed_records,
    field_mappings,
    pending_children,
    sync_batches,
    sync_entities,
    sync_leases,
    sync_positions,
)
from syncflow_dagster.metrics import METRIC_NAMES

B = sync_batches.c
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
"""Upper bounds (seconds) of the run-duration histogram's buckets."""


def _rows(store: StateStore, stmt: Select[Any]) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def batch_page(
    store: StateStore,
    *,
    entity: str | None = None,
    status: str | None = None,
    mode: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Batches matching every filter given, newest first."""
    stmt = select(sync_batches).order_by(B.id.desc()).limit(limit)
    for column, value in ((B.entity, entity), (B.status, status), (B.mode, mode)):
        if value is not None:
            stmt = stmt.where(column == value)
    if before_id is not None:
        stmt = stmt.where(B.id < before_id)
    return _rows(store, stmt)


def batches_of_runs(store: StateStore, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every batch written by these runs, by id."""
    if not run_ids:
        return []
    return _rows(store, select(sync_batches).where(B.run_id.in_(list(run_ids))).order_by(B.id))


def latest_batches(store: StateStore) -> dict[str, dict[str, Any]]:
    """The latest batch of each entity."""
    newest = select(func.max(B.id)).group_by(B.entity).scalar_subquery()
    return {r["entity"]: r for r in _rows(store, select(sync_batches).where(B.id.in_(newest)))}


def totals(store: StateStore) -> list[dict[str, Any]]:
    """Per entity and status: the batch count and every metric summed."""
    stmt = select(
        B.entity,
        B.status,
        func.count().label("batches"),
        *(func.coalesce(func.sum(B[name]), 0).label(name) for name in METRIC_NAMES),
    ).group_by(B.entity, B.status)
    return _rows(store, stmt)


def duration_histogram(store: StateStore) -> list[dict[str, Any]]:
    """Per entity, finished batches counted below each bucket bound, their count and sum."""
    finished = B.status != "running"
    stmt = (
        select(
            B.entity,
            func.count().label("count"),
            func.coalesce(func.sum(B.duration_ms), 0).label("sum_ms"),
            *(
                func.sum(case((B.duration_ms <= bound * 1000, 1), else_=0)).label(f"le_{i}")
                for i, bound in enumerate(DURATION_BUCKETS)
            ),
        )
        .where(finished)
        .group_by(B.entity)
    )
    return _rows(store, stmt)


def last_success(store: StateStore) -> dict[str, datetime]:
    """When each entity's latest succeeded batch finished."""
    stmt = (
        select(B.entity, func.max(B.finished_at).label("at"))
        .where(B.status == "succeeded")
        .group_by(B.entity)
    )
    return {r["entity"]: r["at"] for r in _rows(store, stmt) if r["at"] is not None}


def waiting_children(store: StateStore) -> dict[str, int]:
    """Children waiting for a parent, per entity."""
    c = pending_children.c
    stmt = select(c.entity, func.count().label("n")).where(c.status == "waiting")
    return {r["entity"]: int(r["n"]) for r in _rows(store, stmt.group_by(c.entity))}


def open_dead_letters(store: StateStore) -> list[dict[str, Any]]:
    """Open (or retrying) dead letters per entity, code and kind."""
    c = failed_records.c
    stmt = (
        select(c.entity, c.code, c.error_kind, func.count().label("n"))
        .where(c.status.in_(("open", "retrying")))
        .group_by(c.entity, c.code, c.error_kind)
    )
    return _rows(store, stmt)


def state_records(store: StateStore) -> dict[str, int]:
    """Records with sync state, per entity."""
    e, s = sync_entities.c, erp_sync_state.c
    stmt = (
        select(e.name, func.count().label("n"))
        .select_from(sync_entities.join(erp_sync_state, e.id == s.entity_id))
        .group_by(e.name)
    )
    return {r["name"]: int(r["n"]) for r in _rows(store, stmt)}


def entity_state(store: StateStore, entity: str) -> dict[str, Any]:
    """What the store holds for one entity: records, waiting, open letters, batches, watermark."""
    f, p = failed_records.c, pending_children.c
    with store.engine.connect() as conn:
        letters = conn.execute(
            select(func.count()).where(f.entity == entity, f.status.in_(("open", "retrying")))
        ).scalar_one()
        waiting = conn.execute(
            select(func.count()).where(p.entity == entity, p.status == "waiting")
        ).scalar_one()
        running = conn.execute(
            select(func.count()).where(B.entity == entity, B.status == "running")
        ).scalar_one()
        batches = conn.execute(select(func.count()).where(B.entity == entity)).scalar_one()
    return {
        "records": store.count_state(entity),
        "waiting_children": int(waiting),
        "open_dead_letters": int(letters),
        "running_batches": int(running),
        "batches": int(batches),
        "watermark": store.last_watermark(entity),
    }


def purge_entity(store: StateStore, entity: str) -> dict[str, int]:
    """Delete everything the state holds about ``entity``, in one transaction; counts per table.

    Its records' state, position, lease, waiting children, dead letters, batches,
    background sync and mapping versions. The caller makes sure no run holds it.
    """
    entity_id = select(sync_entities.c.id).where(sync_entities.c.name == entity).scalar_subquery()
    steps = (
        ("records", delete(erp_sync_state).where(erp_sync_state.c.entity_id == entity_id)),
        ("waiting_children", delete(pending_children).where(pending_children.c.entity == entity)),
        ("dead_letters", delete(failed_records).where(failed_records.c.entity == entity)),
        ("batches", delete(sync_batches).where(B.entity == entity)),
        ("positions", delete(sync_positions).where(sync_positions.c.entity == entity)),
        ("leases", delete(sync_leases).where(sync_leases.c.entity == entity)),
        (
            "background",
            delete(background_sync_schedule).where(background_sync_schedule.c.entity == entity),
        ),
        ("mapping_versions", delete(field_mappings).where(field_mappings.c.entity == entity)),
    )
    counts: dict[str, int] = {}
    with store.engine.begin() as conn:
        for name, stmt in steps:
            counts[name] = int(conn.execute(stmt).rowcount or 0)
    return counts
