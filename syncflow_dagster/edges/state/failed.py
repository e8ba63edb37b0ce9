"""failed_records: the dead-letter queue (bad input is data, not a crash).

Every change a person, a sensor or a run makes to a letter after it was
written (retry, resolve, discard, a failed attempt) appends one entry
``{"at", "action", "reason"}`` to the letter's ``actions`` (a JSON list), so a
letter carries its own history.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

from syncflow_dagster.edges.state import pgcopy
from syncflow_dagster.edges.state.base import StoreBase, chunks, rows_frame, utcnow
from syncflow_dagster.edges.state.records import UTC_TIME, record_frame
from syncflow_dagster.edges.state.tables import FAILED_STATUSES, failed_records
from syncflow_dagster.errors import ERROR_KINDS

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
    "error_kind": pl.String(),
    "attempts": pl.Int64(),
    "actions": pl.String(),
}
_JSON = ("source_key", "raw", "normalized", "mapped", "actions")

FAILED_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "batch_id": pl.Int64(),
    "entity": pl.String(),
    "bk_hash": pl.String(),
    "source_key": pl.String(),
    "rowversion": pl.Int64(),
    "stage": pl.String(),
    "code": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
    "normalized": pl.String(),
    "mapped": pl.String(),
    "attempts": pl.Int64(),
    "next_retry_at": UTC_TIME,
    "status": pl.String(),
    "error_kind": pl.String(),
    "resolved_at": UTC_TIME,
    "resolution": pl.String(),
    "actions": pl.String(),
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
}
"""Every column of ``failed_records``, in table order."""

UNSETTLED = ("open", "retrying")
"""Statuses of letters still waiting for an outcome (the others are closed)."""

CLOSED = ("resolved", "abandoned", "discarded")
"""Statuses that stamp ``resolved_at``."""


def action_entry(action: str, reason: str, at: datetime | None = None) -> dict[str, str]:
    """One entry of a row's ``actions`` list: when (ISO 8601, UTC), what, and why."""
    when = (at or utcnow()).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"at": when, "action": action, "reason": reason}


def with_action(actions: str | None, entry: Mapping[str, str]) -> str:
    """``actions`` (JSON text of a list, or null) with ``entry`` appended, as JSON text.

    Text that is not a JSON list is kept as the reason of a first ``note`` entry.
    """
    history: list[Any] = []
    if actions:
        try:
            loaded = json.loads(actions)
        except ValueError:
            loaded = None
        history = (
            loaded
            if isinstance(loaded, list)
            else [{"at": None, "action": "note", "reason": actions}]
        )
    return json.dumps([*history, dict(entry)], ensure_ascii=False)


class ActionOps(StoreBase):
    """Change rows of a side table (dead letters, waiting children) and record why."""

    def _act(
        self,
        table: Table,
        ids: Iterable[int],
        action: str,
        reason: str,
        values: Mapping[str, object],
        statuses: Sequence[str] | None,
        now: datetime | None = None,
    ) -> list[int]:
        """Apply ``values`` to the rows ``ids`` whose status is in ``statuses`` (None: any).

        Each changed row gets ``updated_at`` now and ``{at, action, reason}``
        appended to its ``actions``: one UPDATE per thousand ids, the entry
        appended in SQL, so that closing many letters at once (a run that sees
        them recovered) stays one statement per chunk, and concurrent actions
        on a row never lose an entry (each UPDATE sees the one before).

        Returns:
            The ids that changed, ascending.
        """
        id_list = sorted({int(i) for i in ids})
        now = now or utcnow()
        entry = literal(json.dumps(action_entry(action, reason, now), ensure_ascii=False), Text())
        c = table.c
        history = c.actions
        appended = case(
            (
                or_(history.is_(None), history == "", history == "[]"),
                literal("[", Text()) + entry + literal("]", Text()),
            ),
            else_=func.substr(history, 1, func.length(history) - 1)
            + literal(", ", Text())
            + entry
            + literal("]", Text()),
        )
        changed: list[int] = []
        with self._write() as conn:
            for part in chunks(id_list, 1000):
                stmt = update(table).where(c.id.in_(part))
                if statuses is not None:
                    stmt = stmt.where(c.status.in_(list(statuses)))
                stmt = stmt.values({**values, "actions": appended, "updated_at": now})
                changed.extend(int(row.id) for row in conn.execute(stmt.returning(c.id)))
        return sorted(changed)


def row_filters(
    table: Table,
    allowed: Sequence[str],
    *,
    ids: Iterable[int] | None = None,
    entity: str | None = None,
    status: str | Sequence[str] | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    after_id: int = 0,
) -> list[ColumnElement[bool]]:
    """WHERE terms shared by the dead-letter and waiting-children tables.

    ``allowed``: the table's statuses; ``status`` outside them raises ValueError.
    The other arguments are as :func:`failed_filters` and :func:`pending_filters` say.
    """
    c = table.c
    terms: list[ColumnElement[bool]] = []
    if ids is not None:
        terms.append(c.id.in_(sorted({int(i) for i in ids})))
    if entity is not None:
        terms.append(c.entity == entity)
    if status is not None:
        statuses = (status,) if isinstance(status, str) else tuple(status)
        bad = [s for s in statuses if s not in allowed]
        if bad:
            raise ValueError(f"status must be one of {tuple(allowed)}, got {bad[0]!r}")
        terms.append(c.status.in_(statuses))
    if batch_id is not None:
        terms.append(c.batch_id == batch_id)
    if since is not None:
        terms.append(c.created_at >= since)
    if after_id:
        terms.append(c.id > after_id)
    return terms


def failed_filters(
    *,
    ids: Iterable[int] | None = None,
    entity: str | None = None,
    stage: str | None = None,
    code: str | None = None,
    kind: str | None = None,
    status: str | Sequence[str] | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    after_id: int = 0,
) -> list[ColumnElement[bool]]:
    """WHERE terms selecting dead letters; every argument given narrows the selection.

    Args:
        ids: these letters only.
        entity: of this entity.
        stage: failed at this stage.
        code: with this failure code.
        kind: ``error_kind`` equal to (transient, permanent, configuration).
        status: one status or several (None: any).
        batch_id: written by this batch.
        since: created at or after this instant (aware).
        after_id: ``id > after_id`` (paging).
    """
    c = failed_records.c
    terms = row_filters(
        failed_records,
        FAILED_STATUSES,
        ids=ids,
        entity=entity,
        status=status,
        batch_id=batch_id,
        since=since,
        after_id=after_id,
    )
    for column, value in ((c.stage, stage), (c.code, code)):
        if value is not None:
            terms.append(column == value)
    if kind is not None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {ERROR_KINDS}, got {kind!r}")
        terms.append(c.error_kind == kind)
    return terms


class FailedOps(ActionOps):
    """Write, list, retry and resolve dead letters."""

    def add_failed(self, batch_id: int, entity: str, frame: pl.DataFrame) -> int:
        """Dead-letter records in bulk, status ``open``.

        Args:
            batch_id: the batch that met the failure.
            entity: the entity.
            frame: ``stage`` and ``code`` (required); ``bk_hash`` (hex, null when the key
                could not be read), ``source_key`` (the raw key values as JSON),
                ``rowversion``, ``detail``, ``raw`` / ``normalized`` / ``mapped`` (JSON text,
                or structs that are encoded); optional ``next_retry_at`` (aware) to make
                the record due for automatic retry (null: only a human retries it),
                ``error_kind`` (transient, permanent, configuration), ``attempts``
                (default 0: a letter that supersedes an older one carries its count on)
                and ``actions`` (JSON list of ``{at, action, reason}``: its history).

        Returns:
            The number of records written.
        """
        rows = record_frame(frame, _INPUT, ("stage", "code"), _JSON, nullable_key=True)
        if rows.is_empty():
            return 0
        rows = rows.with_columns(pl.col("attempts").fill_null(0))
        kinds = set(rows.get_column("error_kind").drop_nulls().unique().to_list())
        if kinds - set(ERROR_KINDS):
            raise ValueError(
                f"error_kind must be one of {ERROR_KINDS}, got {sorted(kinds - set(ERROR_KINDS))}"
            )
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
        self,
        entity: str | None = None,
        status: str | Sequence[str] | None = "open",
        limit: int | None = 100,
        *,
        ids: Iterable[int] | None = None,
        stage: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        batch_id: int | None = None,
        since: datetime | None = None,
        after_id: int = 0,
    ) -> pl.DataFrame:
        """Dead letters, oldest first, every column (``status=None``: any status).

        Every filter given narrows the list (see :func:`failed_filters`); page
        through a long list with ``after_id`` = the last id seen; ``limit=None``:
        no limit.
        """
        terms = failed_filters(
            ids=ids,
            entity=entity,
            stage=stage,
            code=code,
            kind=kind,
            status=status,
            batch_id=batch_id,
            since=since,
            after_id=after_id,
        )
        stmt = select(failed_records).where(*terms).order_by(failed_records.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._failed_frame(stmt)

    def get_failed(self, letter_id: int) -> dict[str, Any] | None:
        """Every column of one dead letter (None: no such letter)."""
        frame = self._failed_frame(select(failed_records).where(failed_records.c.id == letter_id))
        return frame.row(0, named=True) if frame.height else None

    def due_failed(
        self, now: datetime, limit: int = 100, after_id: int = 0, kind: str | None = None
    ) -> pl.DataFrame:
        """Open dead letters due for retry (``next_retry_at <= now``), ``id > after_id``, by id.

        ``kind`` keeps only letters of that ``error_kind`` (the failed-records
        sensor asks for ``transient``). Bounded by ``limit`` so a sensor tick
        stays short; page with the last id seen.
        """
        terms = failed_filters(status="open", kind=kind, after_id=after_id)
        stmt = (
            select(failed_records)
            .where(*terms, failed_records.c.next_retry_at <= now)
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
        """Set the status of dead letters; closing ones stamp ``resolved_at``.

        The change is recorded as an action (``status``, with ``resolution`` as the reason).

        Returns:
            How many records changed.
        """
        if status not in FAILED_STATUSES:
            raise ValueError(f"status must be one of {FAILED_STATUSES}, got {status!r}")
        now = utcnow()
        values = {
            "status": status,
            "resolution": resolution,
            "resolved_at": now if status in CLOSED else None,
        }
        return len(self._act(failed_records, ids, status, resolution or "", values, None, now))

    def bump_failed_attempt(
        self, ids: Iterable[int], next_retry_at: datetime | None, reason: str | None = None
    ) -> int:
        """Count one more (failed) retry: ``attempts + 1``, reopen, schedule the next one.

        Recorded as an action ``retry_failed`` (with ``reason``, e.g. the error).

        Returns:
            How many records changed.
        """
        values = {
            "attempts": failed_records.c.attempts + 1,
            "next_retry_at": next_retry_at,
            "status": "open",
        }
        return len(self._act(failed_records, ids, "retry_failed", reason or "", values, None))

    def resolve_failed(
        self,
        ids: Iterable[int],
        reason: str,
        *,
        action: str = "resolve",
        statuses: Sequence[str] = UNSETTLED,
    ) -> list[int]:
        """Close letters as ``resolved`` (someone fixed the cause, or a retry delivered them).

        ``resolution`` becomes ``reason`` (or the action's name when it is empty),
        ``resolved_at`` now, and ``{at, action, reason}`` is appended to ``actions``.
        Only letters whose status is one of ``statuses`` change (by default the
        unsettled ones: a closed letter stays as it was closed).

        Returns:
            The ids that changed, ascending.
        """
        return self._close(ids, "resolved", action, reason, statuses)

    def discard_failed(
        self, ids: Iterable[int], reason: str, *, statuses: Sequence[str] = UNSETTLED
    ) -> list[int]:
        """Close letters as ``discarded`` (not worth delivering); recorded with ``reason``.

        Returns:
            The ids that changed, ascending.
        """
        return self._close(ids, "discarded", "discard", reason, statuses)

    def mark_failed_retrying(self, ids: Iterable[int], reason: str = "") -> list[int]:
        """Mark unsettled letters ``retrying`` (a retry of them is under way); action ``retry``.

        Returns:
            The ids that changed, ascending (closed letters are left alone).
        """
        return self._act(failed_records, ids, "retry", reason, {"status": "retrying"}, UNSETTLED)

    def hold_failed(self, ids: Iterable[int], reason: str) -> list[int]:
        """Take unsettled letters off automatic retry (``next_retry_at`` null); action ``hold``.

        Returns:
            The ids that changed, ascending.
        """
        return self._act(failed_records, ids, "hold", reason, {"next_retry_at": None}, UNSETTLED)

    def _close(
        self, ids: Iterable[int], status: str, action: str, reason: str, statuses: Sequence[str]
    ) -> list[int]:
        now = utcnow()
        values = {"status": status, "resolution": reason or action, "resolved_at": now}
        return self._act(failed_records, ids, action, reason, values, statuses, now)

    def _failed_frame(self, stmt: Select[tuple[object, ...]]) -> pl.DataFrame:
        with self._read() as conn:
            rows = conn.execute(stmt).fetchall()
        return rows_frame(rows, FAILED_SCHEMA)
