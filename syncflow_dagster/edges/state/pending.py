"""pending_children: records waiting for a parent that has not reached the hub yet.

What people do with a waiting child (retry it now, drop it) is recorded in its
``actions`` (a JSON list of ``{at, action, reason}``), as for dead letters.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Select, func, select, text, update

from syncflow_dagster.edges.state import pgcopy
from syncflow_dagster.edges.state.base import as_keys, chunks, rows_frame, utcnow
from syncflow_dagster.edges.state.failed import ActionOps, row_filters
from syncflow_dagster.edges.state.records import UTC_TIME, record_frame
from syncflow_dagster.edges.state.tables import PENDING_STATUSES, pending_children

_INPUT: dict[str, pl.DataType] = {
    "bk_hash": pl.String(),
    "rowversion": pl.Int64(),
    "payload": pl.String(),
    "waiting_for": pl.String(),
    "next_retry_at": UTC_TIME,
}
PENDING_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "entity": pl.String(),
    "bk_hash": pl.String(),
    "batch_id": pl.Int64(),
    "rowversion": pl.Int64(),
    "payload": pl.String(),
    "waiting_for": pl.String(),
    "attempts": pl.Int64(),
    "next_retry_at": UTC_TIME,
    "status": pl.String(),
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
    "released_at": UTC_TIME,
    "actions": pl.String(),
}
"""Every column of ``pending_children``, in table order."""

_PG_UPSERT = """
INSERT INTO pending_children (entity, bk_hash, batch_id, rowversion, payload, waiting_for,
                              attempts, next_retry_at, status, created_at, updated_at)
SELECT %(entity)s::varchar, t.bk_hash, %(batch)s::bigint, t.rowversion, t.payload, t.waiting_for,
       0, coalesce(t.next_retry_at, %(now)s::timestamptz), 'waiting',
       %(now)s::timestamptz, %(now)s::timestamptz
FROM _sf_pending t
ON CONFLICT (entity, bk_hash) WHERE status = 'waiting' DO UPDATE SET
    batch_id = excluded.batch_id, rowversion = excluded.rowversion,
    payload = excluded.payload, waiting_for = excluded.waiting_for,
    updated_at = excluded.updated_at
"""


def pending_filters(
    *,
    ids: Iterable[int] | None = None,
    entity: str | None = None,
    status: str | Sequence[str] | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    after_id: int = 0,
) -> list[ColumnElement[bool]]:
    """WHERE terms selecting waiting children; every argument given narrows the selection.

    Args:
        ids: these rows only.
        entity: of this (child) entity.
        status: one status or several (None: any).
        batch_id: queued (last) by this batch.
        since: queued at or after this instant (aware; ``created_at``).
        after_id: ``id > after_id`` (paging).
    """
    return row_filters(
        pending_children,
        PENDING_STATUSES,
        ids=ids,
        entity=entity,
        status=status,
        batch_id=batch_id,
        since=since,
        after_id=after_id,
    )


class PendingOps(ActionOps):
    """Queue, list, release and expire pending children."""

    def add_pending(self, entity: str, batch_id: int, frame: pl.DataFrame) -> int:
        """Queue children whose parents are missing; re-queuing a waiting child updates it.

        A child already waiting gets the new payload (its latest version) in
        place and keeps its ``attempts`` and ``next_retry_at``: only a retry that
        finds its parent still missing counts an attempt
        (:meth:`record_pending_attempts`). A new one starts at ``attempts`` 0.

        Args:
            entity: the child entity.
            batch_id: the batch that found the parents missing.
            frame: ``bk_hash`` (hex), ``payload`` (JSON text: mapped data, data_hash,
                parents — or a struct, encoded), ``waiting_for`` (JSON list of
                ``{entity, bk_hash}``, or a list of structs); optional ``rowversion``
                and ``next_retry_at`` (aware; default now, i.e. due at once).

        Returns:
            The number of children queued or re-queued.
        """
        rows = record_frame(
            frame,
            _INPUT,
            ("bk_hash", "payload", "waiting_for"),
            ("payload", "waiting_for"),
            nullable_key=False,
        )
        if rows.is_empty():
            return 0
        rows = rows.unique("bk_hash", keep="last", maintain_order=True)
        now = utcnow()
        with self._write() as conn:
            if self._pg:
                conn.exec_driver_sql(
                    "CREATE TEMP TABLE _sf_pending (bk_hash uuid NOT NULL, rowversion bigint,"
                    " payload text, waiting_for text, next_retry_at timestamptz) ON COMMIT DROP"
                )
                pgcopy.copy_in(
                    conn, "COPY _sf_pending FROM STDIN (FORMAT csv)", rows, pgcopy.to_copy_csv
                )
                params = {"entity": entity, "batch": batch_id, "now": now}
                conn.exec_driver_sql(_PG_UPSERT, params)
                conn.exec_driver_sql("DROP TABLE _sf_pending")
            else:
                stmt = self._insert(pending_children)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["entity", "bk_hash"],
                    index_where=text("status = 'waiting'"),
                    set_={
                        **{
                            name: stmt.excluded[name]
                            for name in ("batch_id", "rowversion", "payload", "waiting_for")
                        },
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
                extra = {"entity": entity, "batch_id": batch_id, "status": "waiting"}
                records = [
                    r
                    | extra
                    | {
                        "attempts": 0,
                        "next_retry_at": r["next_retry_at"] or now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for r in rows.to_dicts()
                ]
                conn.execute(stmt, records)
        return rows.height

    def record_pending_attempts(
        self, entity: str, attempts: pl.DataFrame, now: datetime | None = None
    ) -> int:
        """Record a failed retry of waiting children: their new ``attempts`` and ``next_retry_at``.

        Args:
            entity: the child entity.
            attempts: ``bk_hash``, ``attempts`` (the new count), ``next_retry_at`` (aware).
            now: the time of the change (default now).

        Returns:
            How many waiting rows changed.
        """
        if attempts.height == 0:
            return 0
        now = now or utcnow()
        c = pending_children.c
        changed = 0
        with self._write() as conn:
            for part in attempts.iter_slices(500):
                for key, count, due in part.select(
                    "bk_hash", "attempts", "next_retry_at"
                ).iter_rows():
                    changed += conn.execute(
                        update(pending_children)
                        .where(c.entity == entity, c.bk_hash == key, c.status == "waiting")
                        .values(attempts=count, next_retry_at=due, updated_at=now)
                    ).rowcount
        return changed

    def dead_letter_pending(self, entity: str, bk_hashes: pl.Series | Iterable[str]) -> int:
        """Stop waiting children whose attempts are spent (``dead_lettered``).

        The caller writes their dead letters (code ``parent_missing`` or ``has_children``).
        """
        return self._close_pending(entity, bk_hashes, "dead_lettered")

    def waiting_pending(self, entity: str) -> pl.DataFrame:
        """Every child of ``entity`` still waiting, by id."""
        stmt = (
            select(pending_children)
            .where(pending_children.c.entity == entity, pending_children.c.status == "waiting")
            .order_by(pending_children.c.id)
        )
        return self._pending_frame(stmt)

    def list_pending(
        self,
        entity: str | None = None,
        status: str | Sequence[str] | None = "waiting",
        limit: int | None = 100,
        *,
        ids: Iterable[int] | None = None,
        batch_id: int | None = None,
        since: datetime | None = None,
        after_id: int = 0,
    ) -> pl.DataFrame:
        """Children, oldest first, every column (``status=None``: any status).

        Every filter given narrows the list (see :func:`pending_filters`);
        ``limit=None``: no limit.
        """
        terms = pending_filters(
            ids=ids,
            entity=entity,
            status=status,
            batch_id=batch_id,
            since=since,
            after_id=after_id,
        )
        stmt = select(pending_children).where(*terms).order_by(pending_children.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._pending_frame(stmt)

    def get_pending(self, child_id: int) -> dict[str, Any] | None:
        """Every column of one child row (None: no such row)."""
        frame = self._pending_frame(
            select(pending_children).where(pending_children.c.id == child_id)
        )
        return frame.row(0, named=True) if frame.height else None

    def drop_pending(self, ids: Iterable[int], reason: str) -> list[int]:
        """Stop waiting children from waiting (``dropped``): they are never sent.

        Only rows still ``waiting`` change; ``{at, action: drop, reason}`` is
        appended to their ``actions``.

        Returns:
            The ids that changed, ascending.
        """
        return self._act(pending_children, ids, "drop", reason, {"status": "dropped"}, ("waiting",))

    def retry_pending_now(
        self, ids: Iterable[int], reason: str = "", now: datetime | None = None
    ) -> list[int]:
        """Make waiting children due at once (``next_retry_at`` = now); action ``retry``.

        The next retry of the entity's waiting children (its retry job, or the
        sensor that launches it) then takes them up. Only ``waiting`` rows change.

        Returns:
            The ids that changed, ascending.
        """
        now = now or utcnow()
        return self._act(
            pending_children, ids, "retry", reason, {"next_retry_at": now}, ("waiting",), now
        )

    def due_pending(self, now: datetime, limit: int = 100, after_id: int = 0) -> pl.DataFrame:
        """Waiting children due for a retry (``next_retry_at <= now``), ``id > after_id``, by id."""
        stmt = (
            select(pending_children)
            .where(
                pending_children.c.status == "waiting",
                pending_children.c.next_retry_at <= now,
                pending_children.c.id > after_id,
            )
            .order_by(pending_children.c.id)
            .limit(limit)
        )
        return self._pending_frame(stmt)

    def count_pending(self, entity: str | None = None) -> int:
        """How many children (of one entity, or all) are waiting."""
        stmt = (
            select(func.count())
            .select_from(pending_children)
            .where(pending_children.c.status == "waiting")
        )
        if entity is not None:
            stmt = stmt.where(pending_children.c.entity == entity)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def release_pending(self, entity: str, bk_hashes: pl.Series | Iterable[str]) -> int:
        """Mark waiting children ``released`` (their parents arrived and they were sent)."""
        return self._close_pending(entity, bk_hashes, "released")

    def expire_pending(self, entity: str, bk_hashes: pl.Series | Iterable[str]) -> int:
        """Give up on waiting children (``expired``), e.g. after too many attempts."""
        return self._close_pending(entity, bk_hashes, "expired")

    def _close_pending(self, entity: str, bk_hashes: pl.Series | Iterable[str], status: str) -> int:
        keys = as_keys(bk_hashes)
        if keys.is_empty():
            return 0
        now = utcnow()
        released_at = now if status == "released" else None
        with self._write() as conn:
            if self._pg:
                with self._pg_keys(conn, keys) as staged:
                    result = conn.exec_driver_sql(
                        "UPDATE pending_children p SET status = %(status)s,"
                        " released_at = %(released_at)s, updated_at = %(now)s"
                        f" FROM {staged} k WHERE p.entity = %(entity)s"
                        " AND p.bk_hash = k.bk_hash AND p.status = 'waiting'",
                        {
                            "status": status,
                            "released_at": released_at,
                            "now": now,
                            "entity": entity,
                        },
                    )
                    return int(result.rowcount)
            changed = 0
            for part in chunks(keys.to_list()):
                stmt = (
                    update(pending_children)
                    .where(
                        pending_children.c.entity == entity,
                        pending_children.c.status == "waiting",
                        pending_children.c.bk_hash.in_(part),
                    )
                    .values(status=status, released_at=released_at, updated_at=now)
                )
                changed += conn.execute(stmt).rowcount
            return changed

    def _pending_frame(self, stmt: Select[tuple[object, ...]]) -> pl.DataFrame:
        with self._read() as conn:
            rows = conn.execute(stmt).fetchall()
        return rows_frame(rows, PENDING_SCHEMA)
