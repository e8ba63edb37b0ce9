"""Monitoring: Prometheus metrics, figures per entity, dead letters, waiting children.

Dead letters and waiting children are listed with the filters of ``syncflow
failed list`` / ``syncflow pending list`` and the same store methods; acting
on them stays with the CLI and ``resolve_failed_records_job`` (and
``POST /api/v1/sync/retry-failed``).
"""

import argparse
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from syncflow_dagster.api import queries
from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.endpoint import Call, Endpoint
from syncflow_dagster.api.metrics import CONTENT_TYPE, render
from syncflow_dagster.api.models import (
    Action,
    EntityStats,
    FailedList,
    FailedPath,
    FailedQuery,
    FailedRecord,
    PendingChild,
    PendingList,
    PendingQuery,
    Stats,
)
from syncflow_dagster.api.problems import ApiProblem, not_found
from syncflow_dagster.api.routes.sync import batch_model
from syncflow_dagster.commands.failed import history, parse_since
from syncflow_dagster.metrics import METRIC_NAMES


def metrics(ctx: ApiContext, call: Call) -> Response:
    """Prometheus metrics (text exposition format), read from the state database now.

    Per entity the batch metrics as counters (``syncflow_batch_<name>_total``),
    batches by status, the run-duration histogram, waiting children and open
    dead letters (by code and kind), the last successful sync, background
    progress; HTTP retries and failures per upstream.
    """
    assert ctx.registry is not None, "the app sets the metrics registry"
    return Response(render(ctx.registry), media_type=CONTENT_TYPE)


def stats(ctx: ApiContext, call: Call) -> Stats:
    """Figures per entity: batches by status, records in state, waiting, open letters, totals."""
    store = ctx.store
    names = ctx.catalog().parent_first()
    by_status: dict[str, dict[str, int]] = {}
    sums: dict[str, dict[str, int]] = {}
    for row in queries.totals(store):
        entity = row["entity"]
        by_status.setdefault(entity, {})[row["status"]] = int(row["batches"])
        if row["status"] != "running":
            mine = sums.setdefault(entity, dict.fromkeys(METRIC_NAMES, 0))
            for name in METRIC_NAMES:
                mine[name] += int(row[name])
    records = queries.state_records(store)
    waiting = queries.waiting_children(store)
    letters: dict[str, int] = {}
    for row in queries.open_dead_letters(store):
        letters[row["entity"]] = letters.get(row["entity"], 0) + int(row["n"])
    last_ok = queries.last_success(store)
    latest = queries.latest_batches(store)
    known = [*names, *sorted(set(by_status) - set(names))]
    return Stats(
        generated_at=datetime.now(UTC),
        entities=[
            EntityStats(
                entity=name,
                batches=by_status.get(name, {}),
                records_in_state=records.get(name, 0),
                waiting_children=waiting.get(name, 0),
                open_dead_letters=letters.get(name, 0),
                last_success_at=last_ok.get(name),
                last_batch=batch_model(latest[name]) if name in latest else None,
                totals=sums.get(name, dict.fromkeys(METRIC_NAMES, 0)),
            )
            for name in known
        ],
    )


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text)
    except argparse.ArgumentTypeError as exc:
        raise ApiProblem(
            422, str(exc), errors=[{"loc": "query.since", "message": "not an age or a date"}]
        ) from None


def _actions(row: dict[str, Any]) -> list[Action]:
    return [
        Action(
            at=entry.get("at"),
            action=entry.get("action"),
            reason=entry.get("reason"),
        )
        for entry in history(row.get("actions"))
        if isinstance(entry, dict)
    ]


def _letter(row: dict[str, Any]) -> FailedRecord:
    return FailedRecord(**{**row, "actions": _actions(row)})


def failed_records(ctx: ApiContext, call: Call) -> FailedList:
    """Dead letters, oldest first, with the filters of ``syncflow failed list``."""
    q = call.query_as(FailedQuery)
    rows = ctx.store.list_failed(
        entity=q.entity,
        status=None if q.status == "any" else q.status,
        limit=q.limit,
        stage=q.stage,
        code=q.code,
        kind=q.kind,
        batch_id=q.batch_id,
        since=_since(q.since),
        after_id=q.after_id,
    )
    items = [_letter(r) for r in rows.iter_rows(named=True)]
    more = len(items) == q.limit
    return FailedList(items=items, next_after_id=items[-1].id if more else None)


def failed_record(ctx: ApiContext, call: Call) -> FailedRecord:
    """One dead letter: every column, its raw, normalized and mapped forms, its history."""
    letter_id = call.path_as(FailedPath).id
    row = ctx.store.get_failed(letter_id)
    if row is None:
        raise not_found(f"no dead letter {letter_id}")
    return _letter(row)


def pending_children(ctx: ApiContext, call: Call) -> PendingList:
    """Waiting children, oldest first, with the filters of ``syncflow pending list``."""
    q = call.query_as(PendingQuery)
    rows = ctx.store.list_pending(
        entity=q.entity,
        status=None if q.status == "any" else q.status,
        limit=q.limit,
        batch_id=q.batch_id,
        since=_since(q.since),
        after_id=q.after_id,
    )
    items = [PendingChild(**{**r, "actions": _actions(r)}) for r in rows.iter_rows(named=True)]
    more = len(items) == q.limit
    return PendingList(items=items, next_after_id=items[-1].id if more else None)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/metrics",
        metrics,
        "Prometheus metrics",
        "monitoring",
        "read",
        None,
        media_type=CONTENT_TYPE,
    ),
    Endpoint(
        "GET",
        "/api/v1/stats",
        stats,
        "Figures per entity",
        "monitoring",
        "read",
        Stats,
        errors=(500,),
    ),
    Endpoint(
        "GET",
        "/api/v1/failed-records",
        failed_records,
        "Dead letters",
        "monitoring",
        "read",
        FailedList,
        query_model=FailedQuery,
    ),
    Endpoint(
        "GET",
        "/api/v1/failed-records/{id}",
        failed_record,
        "One dead letter",
        "monitoring",
        "read",
        FailedRecord,
        path_model=FailedPath,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/api/v1/pending-children",
        pending_children,
        "Children waiting for a parent",
        "monitoring",
        "read",
        PendingList,
        query_model=PendingQuery,
    ),
]
