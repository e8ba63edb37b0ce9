"""sync_positions: where each entity's reading stands (watermark, open full pass).

The incremental watermark says every record up to that rowversion is settled.
A full pass reads the whole entity in (rowversion, key) order, possibly over
many runs (a row limit per run, a nightly budget): its cursor says where the
next run resumes. Both only move past records that are settled; the watermark
only grows.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from syncflow_dagster.edges.state.base import StoreBase, utcnow
from syncflow_dagster.edges.state.tables import sync_positions


@dataclass(frozen=True)
class Position:
    """One entity's reading position."""

    entity: str
    watermark: int | None = None
    watermark_cursor: str | None = None
    pass_started_at: datetime | None = None
    pass_cursor: str | None = None
    pass_rowversion: int | None = None
    pass_rows: int = 0
    pass_batches: int = 0
    passes_completed: int = 0
    last_pass_finished_at: datetime | None = None
    deletes_checked_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def pass_open(self) -> bool:
        """Whether a full pass is under way (it resumes after ``pass_cursor``)."""
        return self.pass_started_at is not None


_COLUMNS = tuple(f.name for f in fields(Position))


class PositionOps(StoreBase):
    """Read and move entities' positions."""

    def get_position(self, entity: str) -> Position:
        """The entity's position (an empty one if it never ran)."""
        with self._read() as conn:
            row = conn.execute(
                select(sync_positions).where(sync_positions.c.entity == entity)
            ).first()
        if row is None:
            return Position(entity)
        return Position(**{c: row._mapping[c] for c in _COLUMNS})

    def list_positions(self) -> list[Position]:
        """Every entity's position, by entity."""
        with self._read() as conn:
            rows = conn.execute(select(sync_positions).order_by(sync_positions.c.entity))
            return [Position(**{c: r._mapping[c] for c in _COLUMNS}) for r in rows]

    def _ensure(self, conn: Connection, entity: str) -> None:
        stmt = self._insert(sync_positions).values(entity=entity, updated_at=utcnow())
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["entity"]))

    def _set(self, conn: Connection, entity: str, values: dict[str, Any]) -> None:
        self._ensure(conn, entity)
        conn.execute(
            update(sync_positions)
            .where(sync_positions.c.entity == entity)
            .values(**values, updated_at=utcnow())
        )

    def advance_watermark(
        self,
        entity: str,
        watermark: int | None,
        conn: Connection | None = None,
        cursor: str | None = None,
    ) -> None:
        """Raise the entity's watermark to ``watermark`` (never lower it).

        ``cursor``: APISmith's cursor after the last record read, when the read
        was cut short (the next read resumes there instead of rereading the
        records sharing the last rowversion); None when the read reached the end.
        """
        if watermark is None:
            return
        if conn is None:
            with self._write() as own:
                self.advance_watermark(entity, watermark, own, cursor)
            return
        self._ensure(conn, entity)
        c = sync_positions.c
        conn.execute(
            update(sync_positions)
            .where(c.entity == entity, (c.watermark.is_(None)) | (c.watermark <= watermark))
            .values(watermark=watermark, watermark_cursor=cursor, updated_at=utcnow())
        )

    def advance_pass(
        self,
        entity: str,
        *,
        cursor: str | None,
        rowversion: int | None,
        rows: int,
        finished: bool,
        watermark: int | None = None,
    ) -> Position:
        """Record a settled stretch of the entity's full pass (opening one if none is open).

        Args:
            entity: the entity whose pass moves on.
            cursor: APISmith's cursor after the stretch's last record (resume point).
            rowversion: the rowversion up to which the pass has settled every
                record (the fallback resume point should the cursor expire).
            rows: records read in the stretch.
            finished: the stretch reached the end of the data: the pass closes,
                and ``watermark`` (the highest rowversion it read) becomes the
                incremental watermark if higher.
            watermark: see ``finished``.
        """
        now = utcnow()
        with self._write() as conn:
            self._ensure(conn, entity)
            c = sync_positions.c
            current = conn.execute(
                select(c.pass_started_at, c.pass_rows, c.pass_batches).where(c.entity == entity)
            ).one()
            if finished:
                values: dict[str, Any] = {
                    "pass_started_at": None,
                    "pass_cursor": None,
                    "pass_rowversion": None,
                    "pass_rows": 0,
                    "pass_batches": 0,
                    "passes_completed": c.passes_completed + 1,
                    "last_pass_finished_at": now,
                }
            else:
                values = {
                    "pass_started_at": current.pass_started_at or now,
                    "pass_cursor": cursor,
                    "pass_rowversion": rowversion,
                    "pass_rows": (current.pass_rows if current.pass_started_at else 0) + rows,
                    "pass_batches": (current.pass_batches if current.pass_started_at else 0) + 1,
                }
            self._set(conn, entity, values)
            if finished:
                self.advance_watermark(entity, watermark, conn)
        return self.get_position(entity)

    def reset_pass(self, entity: str) -> None:
        """Forget the entity's open full pass: the next full run starts from the beginning."""
        with self._write() as conn:
            self._set(
                conn,
                entity,
                {
                    "pass_started_at": None,
                    "pass_cursor": None,
                    "pass_rowversion": None,
                    "pass_rows": 0,
                    "pass_batches": 0,
                },
            )

    def mark_deletes_checked(self, entity: str, at: datetime | None = None) -> None:
        """Record when the entity's key listing was last compared with the state."""
        with self._write() as conn:
            self._set(conn, entity, {"deletes_checked_at": at or utcnow()})
