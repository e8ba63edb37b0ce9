"""failed_records: the dead-letter queue (bad input is data, not a crash)."""

from collections.abc import Iterable, Mapping
from datetime import datetime

import polars as pl
from sqlalchemy import Select, func, select, update

from syncflow_dagster.edges.state import pgcopy
from syncflow_dagster.edges.state.base import StoreBase, chunks, rows_frame, utcnow
from syncflow_dagster.edges.state.records import UTC_TIME, record_frame
from syncflow_dagster.edges.state.tables import FAILED_STATUSES, failed_records

_INPUT: dict[str, pl.DataType] = {
    "bk_hash": pl.String(),
    "source_key": pl.String(),
    "rowversion": pl.Int64(),
    "stage": pl.String(),
    "code": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
    "normalized": pl.String(),
    "mapped": pl.String(),
    "next_retry_at": UTC_TIME,
}
_JSON = ("source_key", "raw", "normalized", "mapped")

FAILED_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "batch_id": pl.Int64(),
    "entity": pl.String(),
    **_INPUT,
    "attempts": pl.Int64(),
    "status": pl.String(),
    "resolved_at": UTC_TIME,
    "resolution": pl.String(),
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
}


class FailedOps(StoreBase):
    """Write, list, retry and resolve dead letters."""

    def add_failed(self, batch_id: int, entity: str, frame: pl.DataFrame) -> int:
        """Dead-letter records in bulk, status ``open``, ``attempts`` 0.

        Args:
            batch_id: the batch that met the failure.
            entity: the entity.
            frame: ``stage`` and ``code`` (required); ``bk_hash`` (hex, null when the key
                could not be read), ``source_key`` (the raw key values as JSON),
                ``rowversion``, ``detail``, ``raw`` / ``normalized`` / ``mapped`` (JSON text,
                or structs that are encoded); optional ``next_retry_at`` (aware) to make
                the record due for automatic retry (null: only a human retries it).

        Returns:
            The number of records written.
        """
        rows = record_frame(frame, _INPUT, ("stage", "code"), _JSON, nullable_key=True)
        if rows.is_empty():
            return 0
        with self._write() as conn:
            if self._pg:
                data = rows.select(
                    pl.lit(batch_id, dtype=pl.Int64).alias("batch_id"),
                    pl.lit(entity).alias("entity"),
                    *_INPUT,
                )
                columns = ", ".join(data.columns)
                pgcopy.copy_in(
                    conn,
                    f"COPY failed_records ({columns}) FROM STDIN (FORMAT csv)",
                    data,
                    pgcopy.to_copy_csv,
                )
            else:
                now = utcnow()
                extra = {
                    "batch_id": batch_id,
                    "entity": entity,
                    "created_at": now,
                    "updated_at": now,
                }
                conn.execute(failed_records.insert(), [r | extra for r in rows.to_dicts()])
        return rows.height

    def list_failed(
        self, entity: str | None = None, status: str | None = "open", limit: int = 100
    ) -> pl.DataFrame:
        """Dead letters, oldest first (``status=None``: any status)."""
        stmt = select(failed_records).order_by(failed_records.c.id).limit(limit)
        if entity is not None:
            stmt = stmt.where(failed_records.c.entity == entity)
        if status is not None:
            stmt = stmt.where(failed_records.c.status == status)
        return self._failed_frame(stmt)

    def due_failed(self, now: datetime, limit: int = 100, after_id: int = 0) -> pl.DataFrame:
        """Open dead letters due for retry (``next_retry_at <= now``), ``id > after_id``, by id.

        Bounded by ``limit`` so a sensor tick stays short; page with the last id seen.
        """
        stmt = (
            select(failed_records)
            .where(
                failed_records.c.status == "open",
                failed_records.c.next_retry_at <= now,
                failed_records.c.id > after_id,
            )
            .order_by(failed_records.c.id)
            .limit(limit)
        )
        return self._failed_frame(stmt)

    def open_failed(self, entity: str) -> pl.DataFrame:
        """``id``, ``bk_hash``, ``source_key``, ``rowversion`` of an entity's open dead letters."""
        c = failed_records.c
        stmt = select(c.id, c.bk_hash, c.source_key, c.rowversion).where(
            c.entity == entity, c.status == "open"
        )
        with self._read() as conn:
            rows = [tuple(row) for row in conn.execute(stmt)]
        schema = {"id": pl.Int64(), "bk_hash": pl.String(), "source_key": pl.String()}
        return pl.DataFrame(rows, schema={**schema, "rowversion": pl.Int64()}, orient="row")

    def count_failed(self, entity: str | None = None, status: str | None = "open") -> int:
        """How many dead letters (of one entity / status) there are."""
        stmt = select(func.count()).select_from(failed_records)
        if entity is not None:
            stmt = stmt.where(failed_records.c.entity == entity)
        if status is not None:
            stmt = stmt.where(failed_records.c.status == status)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def mark_failed(self, ids: Iterable[int], status: str, resolution: str | None = None) -> int:
        """Set the status of dead letters; ``resolved``/``abandoned`` stamp ``resolved_at``.

        Returns:
            How many records changed.
        """
        if status not in FAILED_STATUSES:
            raise ValueError(f"status must be one of {FAILED_STATUSES}, got {status!r}")
        now = utcnow()
        closed = status in ("resolved", "abandoned")
        values = {
            "status": status,
            "resolution": resolution,
            "resolved_at": now if closed else None,
            "updated_at": now,
        }
        return self._update_ids(ids, values)

    def bump_failed_attempt(self, ids: Iterable[int], next_retry_at: datetime | None) -> int:
        """Count one more (failed) retry: ``attempts + 1``, reopen, schedule the next one.

        Returns:
            How many records changed.
        """
        values = {
            "attempts": failed_records.c.attempts + 1,
            "next_retry_at": next_retry_at,
            "status": "open",
            "updated_at": utcnow(),
        }
        return self._update_ids(ids, values)

    def _update_ids(self, ids: Iterable[int], values: Mapping[str, object]) -> int:
        id_list = sorted({int(i) for i in ids})
        changed = 0
        with self._write() as conn:
            for part in chunks(id_list, 1000):
                stmt = update(failed_records).where(failed_records.c.id.in_(part)).values(values)
                changed += conn.execute(stmt).rowcount
        return changed

    def _failed_frame(self, stmt: Select[tuple[object, ...]]) -> pl.DataFrame:
        with self._read() as conn:
            rows = conn.execute(stmt).fetchall()
        return rows_frame(rows, FAILED_SCHEMA)
