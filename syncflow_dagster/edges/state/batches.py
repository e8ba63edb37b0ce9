"""sync_batches: one row per run of an entity's job, with its metrics and watermark."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select, update

from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.edges.state.leases import LeaseOps
from syncflow_dagster.edges.state.positions import PositionOps
from syncflow_dagster.edges.state.tables import (
    BATCH_MODES,
    METRIC_NAMES,
    sync_batches,
    sync_leases,
)


class BatchNotFoundError(LookupError):
    """No batch has this id."""


def check_metrics(metrics: Mapping[str, int]) -> dict[str, int]:
    """Validate metric names and values (non-negative integers).

    Raises:
        ValueError: naming the unknown metric or the bad value.
    """
    unknown = sorted(set(metrics) - set(METRIC_NAMES))
    if unknown:
        raise ValueError(f"unknown batch metric(s) {unknown}; known: {', '.join(METRIC_NAMES)}")
    out = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"metric {name} must be a non-negative integer, got {value!r}")
        out[name] = int(value)
    return out


FINAL_STATUSES = ("succeeded", "failed", "paused", "skipped")


class BatchOps(PositionOps, LeaseOps):
    """Start, finish and look up batches."""

    def start_batch(
        self,
        entity: str,
        run_id: str,
        mode: str,
        partition_key: str | None = None,
        mapping_version: int | None = None,
    ) -> int:
        """Record a new running batch and return its id."""
        if mode not in BATCH_MODES:
            raise ValueError(f"batch mode must be one of {BATCH_MODES}, got {mode!r}")
        stmt = (
            sync_batches.insert()
            .values(
                entity=entity,
                run_id=run_id,
                mode=mode,
                partition_key=partition_key,
                mapping_version=mapping_version,
                status="running",
                started_at=utcnow(),
            )
            .returning(sync_batches.c.id)
        )
        with self._write() as conn:
            return int(conn.execute(stmt).scalar_one())

    def batches_of_run(self, run_id: str) -> list[dict[str, Any]]:
        """``id``, ``entity``, ``status`` and ``error`` of a run's batches, oldest first."""
        c = sync_batches.c
        stmt = select(c.id, c.entity, c.status, c.error).where(c.run_id == run_id).order_by(c.id)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def running_batches(self, entity: str | None = None) -> list[dict[str, Any]]:
        """``id``, ``entity`` and ``run_id`` of the batches (of one entity) still running."""
        c = sync_batches.c
        stmt = select(c.id, c.entity, c.run_id).where(c.status == "running").order_by(c.id)
        if entity is not None:
            stmt = stmt.where(c.entity == entity)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def abandon_batch(self, batch_id: int, reason: str, kind: str = "transient") -> bool:
        """Close a batch left 'running' by a run that ended without closing it.

        It is marked failed, without a watermark: its records are read again.
        Its run's lease, if it still holds one, is released with it.

        Returns:
            Whether the batch was still running (and is closed now).
        """
        c = sync_batches.c
        stmt = (
            update(sync_batches)
            .where(c.id == batch_id, c.status == "running")
            .values(
                status="failed",
                finished_at=utcnow(),
                error=f"abandoned: {reason}"[:2000],
                error_kind=kind,
            )
        )
        with self._write() as conn:
            closed = bool(conn.execute(stmt).rowcount)
            if closed:
                run = conn.execute(select(c.entity, c.run_id).where(c.id == batch_id)).one()
                conn.execute(
                    delete(sync_leases).where(
                        sync_leases.c.entity == run.entity, sync_leases.c.holder == run.run_id
                    )
                )
            return closed

    def set_batch_flags(
        self,
        batch_id: int,
        *,
        hub_unsettled: bool | None = None,
        deletes_checked: bool | None = None,
    ) -> None:
        """Set the batch's flags (those given).

        ``hub_unsettled``: set before the first send, cleared once every answer
        is recorded; ``deletes_checked``: the run compared keys for deletes.
        """
        values = {
            name: value
            for name, value in (
                ("hub_unsettled", hub_unsettled),
                ("deletes_checked", deletes_checked),
            )
            if value is not None
        }
        if values:
            with self._write() as conn:
                conn.execute(
                    update(sync_batches).where(sync_batches.c.id == batch_id).values(**values)
                )

    def unreconciled_batches(self, entity: str) -> list[int]:
        """Closed batches of ``entity`` that may have changed the hub unseen, not reconciled yet."""
        c = sync_batches.c
        stmt = (
            select(c.id)
            .where(
                c.entity == entity,
                c.hub_unsettled.is_(True),
                c.status != "running",
                c.reconciled_by.is_(None),
            )
            .order_by(c.id)
        )
        with self._read() as conn:
            return [int(r) for r in conn.execute(stmt).scalars()]

    def mark_reconciled(self, batch_ids: list[int], by: int) -> None:
        """Record that batch ``by`` brought the state in line with the hub after these batches."""
        if not batch_ids:
            return
        with self._write() as conn:
            conn.execute(
                update(sync_batches)
                .where(sync_batches.c.id.in_(batch_ids))
                .values(reconciled_by=by)
            )

    def update_metrics(self, batch_id: int, metrics: Mapping[str, int]) -> None:
        """Set some metrics of a batch (absolute values) while it runs."""
        values = check_metrics(metrics)
        if not values:
            return
        with self._write() as conn:
            result = conn.execute(
                update(sync_batches).where(sync_batches.c.id == batch_id).values(**values)
            )
            if result.rowcount == 0:
                raise BatchNotFoundError(f"no batch {batch_id}")

    def finish_batch(
        self,
        batch_id: int,
        status: str,
        metrics: Mapping[str, int] | None = None,
        *,
        watermark_from: int | None = None,
        watermark_to: int | None = None,
        error: str | None = None,
        error_kind: str | None = None,
        lease_holder: str | None = None,
        watermark_cursor: str | None = None,
    ) -> None:
        """Close a running batch.

        ``duration_ms`` is computed from ``started_at`` unless ``metrics`` gives it.
        Metrics not given keep their current values (see :meth:`update_metrics`).
        A succeeded or paused batch raises the entity's watermark to
        ``watermark_to``; ``lease_holder`` releases that run's lease in the
        same transaction.

        Raises:
            BatchNotFoundError: no such batch.
            ValueError: bad status or metrics, or the batch is already finished.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"a batch finishes as one of {FINAL_STATUSES}, not {status!r}")
        values: dict[str, Any] = check_metrics(metrics or {})
        now = utcnow()
        with self._write() as conn:
            started = conn.execute(
                select(
                    sync_batches.c.started_at, sync_batches.c.status, sync_batches.c.entity
                ).where(sync_batches.c.id == batch_id)
            ).first()
            if started is None:
                raise BatchNotFoundError(f"no batch {batch_id}")
            if started.status != "running":
                raise ValueError(f"batch {batch_id} is already {started.status}")
            values.setdefault(
                "duration_ms", max(0, int((now - started.started_at).total_seconds() * 1000))
            )
            values.update(
                status=status,
                finished_at=now,
                watermark_from=watermark_from,
                watermark_to=watermark_to,
                error=error,
                error_kind=error_kind,
            )
            conn.execute(
                update(sync_batches)
                .where(sync_batches.c.id == batch_id, sync_batches.c.status == "running")
                .values(**values)
            )
            if status in ("succeeded", "paused"):
                self.advance_watermark(started.entity, watermark_to, conn, watermark_cursor)
            if lease_holder is not None:
                self.release_lease(started.entity, lease_holder, conn)

    def get_batch(self, batch_id: int) -> dict[str, Any]:
        """Every column of one batch.

        Raises:
            BatchNotFoundError: no such batch.
        """
        with self._read() as conn:
            row = conn.execute(select(sync_batches).where(sync_batches.c.id == batch_id)).first()
        if row is None:
            raise BatchNotFoundError(f"no batch {batch_id}")
        return dict(row._mapping)

    def batch_metrics(self, batch_id: int) -> dict[str, int]:
        """The 17 metrics of one batch, by name."""
        batch = self.get_batch(batch_id)
        return {name: int(batch[name]) for name in METRIC_NAMES}

    def recent_batches(self, entity: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest batches (of one entity, or all), newest first."""
        stmt = select(sync_batches).order_by(sync_batches.c.id.desc()).limit(limit)
        if entity is not None:
            stmt = stmt.where(sync_batches.c.entity == entity)
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def last_batch_of_other_mapping(self, entity: str, mapping_version: int) -> int | None:
        """The latest batch of ``entity`` that ran under another mapping version, if any.

        State rows written by it (or earlier) were mapped differently from now.
        """
        stmt = select(func.max(sync_batches.c.id)).where(
            sync_batches.c.entity == entity,
            sync_batches.c.mapping_version.is_distinct_from(mapping_version),
        )
        with self._read() as conn:
            value = conn.execute(stmt).scalar_one()
        return None if value is None else int(value)

    def last_watermark(self, entity: str) -> int | None:
        """The rowversion up to which every record of ``entity`` is settled (its position)."""
        return self.get_position(entity).watermark
