"""background_sync_schedule: one row per entity, the source of truth of its background sync.

The store reads and writes the rows; what the fields mean, how the budget is
derived and when a run may start is :mod:`syncflow_dagster.background`.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from syncflow_dagster.edges.state.base import StoreBase, utcnow
from syncflow_dagster.edges.state.tables import PROGRESS_STATUSES, background_sync_schedule


@dataclass(frozen=True)
class BackgroundRow:
    """One entity's background sync, as stored."""

    entity: str
    window_start: str
    window_end: str
    timezone: str
    rows_per_night: int | None = None
    target_nights: int | None = None
    mode: str = "incremental"
    status: str = "pending"
    on_hold: bool = False
    rows_done: int = 0
    rows_total: int | None = None
    nights_used: int = 0
    night: str | None = None
    night_rows: int = 0
    chunk_seconds: float | None = None
    trigger_requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    last_error: str | None = None
    last_run_id: str | None = None


COLUMNS = tuple(f.name for f in fields(BackgroundRow))


class BackgroundRowNotFoundError(LookupError):
    """The entity has no background sync."""


def _row(found: Any) -> BackgroundRow:
    return BackgroundRow(**{c: found._mapping[c] for c in COLUMNS})


class BackgroundOps(StoreBase):
    """Read and write background-sync rows."""

    def get_background(self, entity: str) -> BackgroundRow | None:
        """The entity's row, or None."""
        table = background_sync_schedule
        with self._read() as conn:
            found = conn.execute(select(table).where(table.c.entity == entity)).first()
        return None if found is None else _row(found)

    def list_background(self) -> list[BackgroundRow]:
        """Every row, by entity."""
        table = background_sync_schedule
        with self._read() as conn:
            return [_row(r) for r in conn.execute(select(table).order_by(table.c.entity))]

    def insert_background(self, row: BackgroundRow, if_absent: bool = False) -> bool:
        """Add a row; with ``if_absent`` an existing one is left as it is.

        Returns:
            Whether a row was added.
        """
        values = {c: getattr(row, c) for c in COLUMNS if getattr(row, c) is not None}
        values["updated_at"] = utcnow()
        stmt = self._insert(background_sync_schedule).values(values)
        if if_absent:
            stmt = stmt.on_conflict_do_nothing(index_elements=["entity"])
        stmt = stmt.returning(background_sync_schedule.c.entity)
        with self._write() as conn:
            return conn.execute(stmt).first() is not None

    def update_background(self, entity: str, **values: Any) -> BackgroundRow:
        """Change fields of the entity's row; returns the row as saved.

        Raises:
            BackgroundRowNotFoundError: the entity has no background sync.
            ValueError: an unknown field or status.
        """
        unknown = sorted(set(values) - set(COLUMNS) - {"entity"})
        if unknown:
            raise ValueError(f"unknown background-sync field(s): {', '.join(unknown)}")
        if "status" in values and values["status"] not in PROGRESS_STATUSES:
            raise ValueError(f"status must be one of {PROGRESS_STATUSES}")
        table = background_sync_schedule
        with self._write() as conn:
            changed = conn.execute(
                update(table).where(table.c.entity == entity).values(**values, updated_at=utcnow())
            ).rowcount
        if not changed:
            raise BackgroundRowNotFoundError(f"'{entity}' has no background sync")
        found = self.get_background(entity)
        assert found is not None
        return found

    def delete_background(self, entity: str) -> bool:
        """Remove the entity's row; whether there was one."""
        table = background_sync_schedule
        with self._write() as conn:
            return bool(conn.execute(delete(table).where(table.c.entity == entity)).rowcount)
