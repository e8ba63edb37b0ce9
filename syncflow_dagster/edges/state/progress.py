"""background_sync_schedule: how far a multi-night background sync has got."""

from dataclasses import dataclass, fields, replace
from datetime import datetime

from sqlalchemy import select

from syncflow_dagster.edges.state.base import StoreBase, utcnow
from syncflow_dagster.edges.state.tables import PROGRESS_STATUSES, background_sync_schedule


@dataclass(frozen=True)
class Progress:
    """The resume point of one entity's background sync for one partition.

    ``cursor`` is opaque to the store (the fetcher's resume point). The store
    stamps ``updated_at``, ``started_at`` (first save as ``running``) and
    ``finished_at`` (first save as ``done``).
    """

    entity: str
    partition_key: str
    status: str = "pending"
    cursor: str | None = None
    rows_done: int = 0
    rows_total: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    nights_used: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None


_COLUMNS = tuple(f.name for f in fields(Progress))


class ProgressOps(StoreBase):
    """Read and save background-sync progress."""

    def get_progress(self, entity: str, partition_key: str) -> Progress | None:
        """The saved progress, or None if this partition never started."""
        stmt = select(background_sync_schedule).where(
            background_sync_schedule.c.entity == entity,
            background_sync_schedule.c.partition_key == partition_key,
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else Progress(**{c: row._mapping[c] for c in _COLUMNS})

    def list_progress(self, entity: str | None = None) -> list[Progress]:
        """Every saved progress (of one entity), by entity and partition."""
        stmt = select(background_sync_schedule).order_by(
            background_sync_schedule.c.entity, background_sync_schedule.c.partition_key
        )
        if entity is not None:
            stmt = stmt.where(background_sync_schedule.c.entity == entity)
        with self._read() as conn:
            return [Progress(**{c: r._mapping[c] for c in _COLUMNS}) for r in conn.execute(stmt)]

    def save_progress(self, progress: Progress) -> Progress:
        """Insert or replace the progress of ``(entity, partition_key)``; returns what was saved."""
        if progress.status not in PROGRESS_STATUSES:
            raise ValueError(f"status must be one of {PROGRESS_STATUSES}, got {progress.status!r}")
        now = utcnow()
        saved = replace(
            progress,
            updated_at=now,
            started_at=progress.started_at
            or (now if progress.status in ("running", "done") else None),
            finished_at=progress.finished_at or (now if progress.status == "done" else None),
        )
        values = {c: getattr(saved, c) for c in _COLUMNS}
        stmt = self._insert(background_sync_schedule).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["entity", "partition_key"],
            set_={c: stmt.excluded[c] for c in _COLUMNS if c not in ("entity", "partition_key")},
        )
        with self._write() as conn:
            conn.execute(stmt)
        return saved
