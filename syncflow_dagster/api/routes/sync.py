"""Syncs: start, status, stop, history, retry-failed — Dagster runs joined with sync_batches.

A sync is a run of ``sync_<entity>_job`` (``sync_all_job`` for ``all``)
launched through the webserver, so the run queue holds it while another run
of the entity works, and the UI shows it with the tag of whoever launched it.
A stop terminates the run and closes its batch through the batch lifecycle.
"""

import time
from typing import Any

from syncflow_dagster.api import queries
from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.dagster import (
    ACTIVE,
    FINISHED,
    DagsterUnavailableError,
    RunInfo,
)
from syncflow_dagster.api.endpoint import Call, Endpoint, Reply
from syncflow_dagster.api.models import (
    Batch,
    EntityActivity,
    History,
    HistoryItem,
    HistoryQuery,
    RetryFailedRequest,
    RunLaunch,
    RunPath,
    SyncOverview,
    SyncRun,
    SyncStartRequest,
    SyncStop,
    SyncStopQuery,
)
from syncflow_dagster.api.problems import ApiProblem, conflict, not_found
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.orchestration.resolve import JOB_NAME as RESOLVE_JOB
from syncflow_dagster.orchestration.tags import ENTITY_TAG, TRIGGER_TAG
from syncflow_dagster.pipeline.lifecycle import abandon_batch

LAUNCHED_BY_TAG = "syncflow/launched_by"
"""Who launched a run over the API: the token's subject (never the token)."""
PARTITION_TAG = "dagster/partition"
ALL = "all"
POLL_SECONDS = 0.5


def batch_model(row: dict[str, Any]) -> Batch:
    """A sync_batches row as the API shows it."""
    return Batch(
        id=row["id"],
        entity=row["entity"],
        run_id=row["run_id"],
        mode=row["mode"],
        status=row["status"],
        partition_key=row["partition_key"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        mapping_version=row["mapping_version"],
        watermark_from=row["watermark_from"],
        watermark_to=row["watermark_to"],
        error=row["error"],
        error_kind=row["error_kind"],
        metrics={name: int(row[name] or 0) for name in METRIC_NAMES},
    )


def sync_run(
    ctx: ApiContext,
    run_id: str,
    run: RunInfo | None,
    batches: list[dict[str, Any]],
    dagster_error: str | None = None,
) -> SyncRun:
    """A run and its batches; the status is Dagster's, or UNKNOWN when Dagster cannot tell."""
    tags = run.tags if run else {}
    entity = tags.get(ENTITY_TAG) or (batches[0]["entity"] if batches else None)
    return SyncRun(
        run_id=run_id,
        job=run.job if run else None,
        entity=entity,
        status=run.status if run else "UNKNOWN",
        launched_by=tags.get(LAUNCHED_BY_TAG),
        trigger=tags.get(TRIGGER_TAG),
        partition=tags.get(PARTITION_TAG) or (batches[0]["partition_key"] if batches else None),
        created_at=run.created_at if run else None,
        started_at=run.started_at if run else None,
        ended_at=run.ended_at if run else None,
        batches=[batch_model(b) for b in batches],
        links={"status": f"/api/v1/sync/status/{run_id}", "dagster_ui": ctx.dagster.ui_url(run_id)},
        dagster_error=dagster_error,
    )


def _launch(
    ctx: ApiContext,
    call: Call,
    job: str,
    entity: str | None,
    run_config: dict[str, Any],
    tags: dict[str, str],
) -> Reply:
    all_tags = {**tags, TRIGGER_TAG: "api", LAUNCHED_BY_TAG: call.subject}
    run_id = ctx.dagster.launch(job, run_config, all_tags)
    try:
        run = ctx.dagster.run(run_id)
        status = run.status if run else "QUEUED"
    except DagsterUnavailableError:
        status = "UNKNOWN"
    launch = RunLaunch(
        run_id=run_id,
        job=job,
        entity=entity,
        partition=tags.get(PARTITION_TAG),
        status=status,
        launched_by=call.subject,
        links={
            "status": f"/api/v1/sync/status/{run_id}",
            "stop": f"/api/v1/sync/stop/{run_id}",
            "dagster_ui": ctx.dagster.ui_url(run_id),
        },
    )
    return Reply(launch, 202, {"Location": f"/api/v1/sync/status/{run_id}"})


def start(ctx: ApiContext, call: Call) -> Reply:
    """Launch a sync of one entity (or ``all``) through Dagster's run queue.

    The run carries ``syncflow/trigger: api`` and ``syncflow/launched_by: <who>``
    and, unless another is given, the partition of the window under way.
    """
    req = call.body_as(SyncStartRequest)
    catalog = ctx.catalog()
    if req.entity != ALL and req.entity not in catalog.entities:
        known = ", ".join(catalog.parent_first())
        raise not_found(f"no entity '{req.entity}' is configured (known: {known}, or 'all')")
    s = ctx.settings
    partitions = nightly_partitions(s.erp_timezone, s.background_sync_window_start)
    partition = req.partition or partitions.get_last_partition_key()
    if partition is None or not partitions.has_partition_key(partition):
        raise ApiProblem(
            422,
            f"partition {req.partition!r} is not a night of the sync jobs (YYYY-MM-DD, from "
            f"{partitions.start:%Y-%m-%d} to the window under way)",
            errors=[{"loc": "body.partition", "message": "not a partition key"}],
        )
    config = {
        key: value
        for key, value, default in (
            ("mode", req.mode, "configured"),
            ("max_rows", req.max_rows, None),
            ("compare", req.compare, "configured"),
        )
        if value != default
    }
    if req.entity == ALL:
        names = catalog.parent_first()
        ops = {f"{n}__fetch": {"config": config} for n in names} if config else {}
        run_config: dict[str, Any] = {"ops": ops} if ops else {}
        job = "sync_all_job"
    else:
        run_config = {"ops": {"fetch": {"config": config}}} if config else {}
        job = sync_job_name(req.entity)
    tags = {PARTITION_TAG: str(partition), ENTITY_TAG: req.entity}
    return _launch(ctx, call, job, req.entity, run_config, tags)


def retry_failed(ctx: ApiContext, call: Call) -> Reply:
    """Retry dead letters through ``resolve_failed_records_job`` (action ``retry``).

    Name ids and/or at least one filter; letters chosen by filter must be open.
    Each letter's raw form goes through the stages again in a retry batch of
    its entity; the run's metadata counts the outcomes.
    """
    req = call.body_as(RetryFailedRequest)
    filters = {
        name: value
        for name, value in (
            ("entity", req.entity),
            ("stage", req.stage),
            ("code", req.code),
            ("kind", req.kind),
            ("batch_id", req.batch_id),
        )
        if value not in (None, "")
    }
    if not req.ids and not filters:
        raise ApiProblem(
            422,
            "name dead-letter ids or at least one filter (entity, stage, code, kind, batch_id): "
            "refusing to retry every dead letter",
            errors=[{"loc": "body", "message": "ids or a filter required"}],
        )
    config = {
        "action": "retry",
        "ids": req.ids,
        **filters,
        "reason": req.reason or f"retried over the operations API by {call.subject}",
    }
    run_config = {"ops": {"resolve_failed_records": {"config": config}}}
    tags = {ENTITY_TAG: req.entity} if req.entity else {}
    return _launch(ctx, call, RESOLVE_JOB, req.entity, run_config, tags)


def _runs_for(ctx: ApiContext, target: str, statuses: list[str] | None) -> list[RunInfo] | None:
    """The runs ``target`` names: an entity's (with these statuses), or one run; None if neither."""
    catalog = ctx.catalog()
    if target in catalog.entities or target == ALL:
        return ctx.dagster.runs(tags={ENTITY_TAG: target}, statuses=statuses, limit=20)
    run = ctx.dagster.run(target)
    return None if run is None else [run]


def status(ctx: ApiContext, call: Call) -> SyncRun:
    """One run (by id) with its batches — or, given an entity name, its latest run."""
    target = call.path_as(RunPath).run
    try:
        runs = _runs_for(ctx, target, None)
    except DagsterUnavailableError as exc:
        batches = queries.batches_of_runs(ctx.store, [target])
        if not batches:
            raise
        return sync_run(ctx, target, None, batches, str(exc))
    if runs is None:
        batches = queries.batches_of_runs(ctx.store, [target])
        if not batches:
            raise not_found(f"no run '{target}' in Dagster or in sync_batches")
        return sync_run(ctx, target, None, batches, "Dagster has no such run")
    if not runs:
        raise not_found(f"entity '{target}' has no run yet")
    run = runs[0]
    return sync_run(ctx, run.run_id, run, queries.batches_of_runs(ctx.store, [run.run_id]))


def overview(ctx: ApiContext, call: Call) -> SyncOverview:
    """Every entity's queued and running runs, its running batches and its latest batch."""
    catalog = ctx.catalog()
    error = None
    try:
        active = ctx.dagster.runs(statuses=list(ACTIVE), limit=200)
    except DagsterUnavailableError as exc:
        active, error = [], str(exc)
    running = queries.batch_page(ctx.store, status="running", limit=500)
    latest = queries.latest_batches(ctx.store)
    batches_by_run: dict[str, list[dict[str, Any]]] = {}
    for row in queries.batches_of_runs(ctx.store, [r.run_id for r in active]):
        batches_by_run.setdefault(row["run_id"], []).append(row)
    out = []
    for name in [*catalog.parent_first(), ALL]:
        runs = [r for r in active if r.tags.get(ENTITY_TAG) == name]
        mine = [b for b in running if b["entity"] == name]
        if name == ALL and not runs:
            continue
        out.append(
            EntityActivity(
                entity=name,
                active_runs=[
                    sync_run(ctx, r.run_id, r, batches_by_run.get(r.run_id, [])) for r in runs
                ],
                running_batches=[batch_model(b) for b in reversed(mine)],
                last_batch=batch_model(latest[name]) if name in latest else None,
            )
        )
    return SyncOverview(entities=out, dagster_error=error)


def _wait_finished(ctx: ApiContext, run_ids: list[str], seconds: float) -> dict[str, RunInfo]:
    deadline = time.monotonic() + seconds
    seen: dict[str, RunInfo] = {}
    while True:
        for run in ctx.dagster.runs(run_ids=run_ids, limit=len(run_ids)):
            seen[run.run_id] = run
        if all(seen.get(r) and seen[r].status in FINISHED for r in run_ids):
            return seen
        if time.monotonic() >= deadline:
            return seen
        time.sleep(POLL_SECONDS)


def stop(ctx: ApiContext, call: Call) -> SyncStop:
    """Terminate a run (by id), or every queued or running run of an entity.

    Waits up to ``wait_seconds`` for Dagster to end the run, then closes its
    running batches through the batch lifecycle (failed, transient, no
    watermark: the next run reads the same slice again). A run still ending
    then keeps its batch until it ends; the dead-run sensors close it.
    """
    target = call.path_as(RunPath).run
    wait = call.query_as(SyncStopQuery).wait_seconds
    runs = _runs_for(ctx, target, list(ACTIVE))
    if runs is None:
        raise not_found(f"no run '{target}' in Dagster")
    active = [r for r in runs if r.status not in FINISHED]
    if not active:
        what = f"run {target} is {runs[0].status}" if runs else f"no run of '{target}' is active"
        raise conflict(f"nothing to stop: {what}")
    for run in active:
        if run.status != "CANCELING":
            ctx.dagster.terminate(run.run_id)
    ids = [r.run_id for r in active]
    seen = _wait_finished(ctx, ids, wait)
    reason = f"stopped over the operations API by {call.subject}"
    closed: list[int] = []
    for row in queries.batches_of_runs(ctx.store, ids):
        after = seen.get(row["run_id"])
        ended = after is not None and after.status in FINISHED
        if row["status"] == "running" and ended and abandon_batch(ctx.store, row["id"], reason):
            closed.append(row["id"])
    batches = queries.batches_of_runs(ctx.store, ids)
    models = [
        sync_run(ctx, rid, seen.get(rid), [b for b in batches if b["run_id"] == rid]) for rid in ids
    ]
    ending = [m.run_id for m in models if m.status not in FINISHED]
    detail = (
        f"{len(ids)} run(s) terminated; {len(closed)} batch(es) closed"
        if not ending
        else f"{len(ending)} run(s) still ending after {wait:g} s ({', '.join(ending)}); "
        "their batches are closed when they end"
    )
    return SyncStop(runs=models, terminated=ids, batches_closed=closed, detail=detail)


def history(ctx: ApiContext, call: Call) -> History:
    """Batches, newest first, each with its run's status in Dagster."""
    q = call.query_as(HistoryQuery)
    rows = queries.batch_page(
        ctx.store,
        entity=q.entity,
        status=q.status,
        mode=q.mode,
        before_id=q.before_id,
        limit=q.limit,
    )
    run_ids = sorted({r["run_id"] for r in rows})
    statuses: dict[str, str] = {}
    error = None
    if run_ids:
        try:
            for run in ctx.dagster.runs(run_ids=run_ids, limit=len(run_ids)):
                statuses[run.run_id] = run.status
        except DagsterUnavailableError as exc:
            error = str(exc)
    items = [
        HistoryItem(**batch_model(r).model_dump(), run_status=statuses.get(r["run_id"]))
        for r in rows
    ]
    more = len(rows) == q.limit
    return History(
        items=items, next_before_id=rows[-1]["id"] if more else None, dagster_error=error
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/sync/start",
        start,
        "Start a sync (a Dagster run)",
        "sync",
        "operator",
        RunLaunch,
        status=202,
        body_model=SyncStartRequest,
        errors=(404, 409, 502),
    ),
    Endpoint(
        "GET",
        "/api/v1/sync/status",
        overview,
        "What every entity is doing",
        "sync",
        "read",
        SyncOverview,
        errors=(500,),
    ),
    Endpoint(
        "GET",
        "/api/v1/sync/status/{run}",
        status,
        "A run's status and batches",
        "sync",
        "read",
        SyncRun,
        path_model=RunPath,
        errors=(404, 502),
    ),
    Endpoint(
        "POST",
        "/api/v1/sync/stop/{run}",
        stop,
        "Stop a run (or an entity's runs)",
        "sync",
        "operator",
        SyncStop,
        path_model=RunPath,
        query_model=SyncStopQuery,
        errors=(404, 409, 502),
    ),
    Endpoint(
        "GET",
        "/api/v1/sync/history",
        history,
        "Batches, newest first",
        "sync",
        "read",
        History,
        query_model=HistoryQuery,
    ),
    Endpoint(
        "POST",
        "/api/v1/sync/retry-failed",
        retry_failed,
        "Retry dead letters (a Dagster run)",
        "sync",
        "operator",
        RunLaunch,
        status=202,
        body_model=RetryFailedRequest,
        errors=(409, 502),
    ),
]
