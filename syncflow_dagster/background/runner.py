"""One night of a background sync: chunks through the nine stages until done, budget or window.

A run takes its entity's lease and opens one batch. It then works in chunks
of BACKGROUND_CHUNK_ROWS: each chunk is fetched from where the last one
stopped and goes through every stage; its state, the reading position and
the progress row are committed before the next chunk starts. A run killed
mid-chunk therefore loses at most that chunk, which the next run reads again.

Between chunks the run checks the night's budget and the clock, and stops
cleanly — batch ``paused``, the reason recorded — while the window still has
a safety margin of one and a half of the last chunk's time (at least
SAFETY_SECONDS). A run that starts after its window closed (it waited in the
queue) records a ``skipped`` batch and touches nothing else.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from syncflow_dagster.background.schedules import BackgroundDefaults, get_schedule
from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import BackgroundRow, StateStore
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.chain import after_fetch
from syncflow_dagster.pipeline.fetch import fetch_step
from syncflow_dagster.pipeline.lifecycle import (
    OpenBatch,
    RunInfo,
    fail_batch,
    finish_batch,
    open_run_batch,
)

log = logging.getLogger(__name__)

SAFETY_SECONDS = 120.0
"""The least time a chunk may start before its window closes."""

Clock = Callable[[], datetime]


@dataclass
class NightResult:
    """How a background run ended, and what it did."""

    status: str  # skipped, paused, done
    reason: str
    batch_id: int | None = None
    chunks: int = 0
    rows: int = 0
    chunk_seconds: list[float] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES, 0))


@dataclass(frozen=True)
class BackgroundRun:
    """What a background run needs: the systems, the run, the defaults, a clock."""

    catalog: EntityCatalog
    client: ApiSmithClient
    hub: ScheduleHubClient
    store: StateStore
    defaults: BackgroundDefaults
    erp_timezone: str
    run: RunInfo
    batch_size: int = 1000
    backoff: Backoff | None = None
    clock: Clock = field(default=lambda: datetime.now().astimezone())
    on_chunk: Callable[[NightResult], None] | None = None


def total_rows(client: ApiSmithClient, entity: str, mode: str, since: int | None) -> int:
    """How many rows the new cycle has to go through (APISmith's /count)."""
    count, _ = client.count(entity, None if mode == "full" else since)
    return count


def run_night(job: BackgroundRun, entity: str, night: str) -> NightResult:
    """Work through tonight's part of ``entity``'s background sync."""
    store, defaults = job.store, job.defaults
    schedule = get_schedule(store, job.catalog, defaults, entity)
    row = schedule.row
    window = schedule.window
    cfg = job.catalog[entity]
    mode = "full" if cfg.source.rowversion is None else row.mode
    now = job.clock()
    if row.on_hold or not window.is_open(now):
        why = (
            f"'{entity}' is on hold"
            if row.on_hold
            else f"started at {now:%Y-%m-%d %H:%M %Z}, outside its window "
            f"({row.window_start}–{row.window_end} {row.timezone}): nothing done"
        )
        return _skip(job, entity, mode, why)
    if (
        mode == "full"
        and row.night == night
        and row.status == "done"
        and row.trigger_requested_at is None
    ):
        return _skip(job, entity, mode, f"tonight's full pass ({night}) is complete already")

    batch = open_run_batch(store, cfg, job.run, mode, partition_key=night)
    result = NightResult("paused", "", batch.batch_id)
    try:
        row = _begin_night(job, entity, night, mode, now)
        schedule = get_schedule(store, job.catalog, defaults, entity)
        budget = schedule.budget
        while True:
            left = budget - row.night_rows
            margin = max(SAFETY_SECONDS, 1.5 * (row.chunk_seconds or 0.0))
            now = job.clock()
            seconds_left = window.seconds_left(now)
            if left <= 0:
                result.reason = f"the night's budget of {budget:,} rows is spent"
                break
            if seconds_left <= margin:
                closes = window.closes(now)
                result.reason = (
                    f"the window closes at {closes:%H:%M %Z}: {seconds_left:.0f} s left, "
                    f"a chunk needs a margin of {margin:.0f} s"
                )
                break
            began = time.monotonic()
            s = fetch_step(
                job.catalog,
                entity,
                job.client,
                store,
                job.run,
                mode,  # type: ignore[arg-type]
                job.erp_timezone,
                max_rows=min(defaults.chunk_rows, left),
                hub=job.hub,
                batch=batch,
                check_deletes=None if result.chunks == 0 else False,
            )
            s = after_fetch(
                s,
                job.catalog,
                job.hub,
                store,
                job.batch_size,
                job.erp_timezone,
                job.backoff,
                close=False,
            )
            seconds = time.monotonic() - began
            rows = s.metrics["fetched"]
            for name in METRIC_NAMES:
                if name != "duration_ms":
                    result.metrics[name] += s.metrics.get(name, 0)
            result.chunks += 1
            result.rows += rows
            result.chunk_seconds.append(seconds)
            caught_up = not s.truncated
            row = store.update_background(
                entity,
                rows_done=row.rows_done + rows,
                night_rows=row.night_rows + rows,
                chunk_seconds=seconds,
                status="done" if caught_up else "running",
                finished_at=now if caught_up else None,
                last_error=None,
            )
            if job.on_chunk is not None:
                job.on_chunk(result)
            if caught_up:
                result.status = "done"
                result.reason = (
                    "the full pass is complete" if mode == "full" else "caught up with the ERP"
                )
                break
    except BaseException as exc:
        fail_batch(store, batch, exc, result.metrics)
        store.update_background(entity, status="failed", last_error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(store, batch, result, row.status == "done")
    return result


def _begin_night(
    job: BackgroundRun, entity: str, night: str, mode: str, now: datetime
) -> BackgroundRow:
    """Start tonight on the row: a new cycle when the last one was done, a new night when due."""
    store = job.store
    row = store.get_background(entity)
    assert row is not None
    values: dict[str, object] = {
        "status": "running",
        "last_run_id": job.run.run_id,
        "trigger_requested_at": None,
    }
    if row.status in ("pending", "done"):
        since = store.get_position(entity).watermark
        values.update(
            rows_done=0,
            nights_used=0,
            rows_total=total_rows(job.client, job.catalog[entity].source.entity, mode, since),
            started_at=now,
            finished_at=None,
        )
    if row.night != night or "rows_total" in values:
        used = 0 if "rows_total" in values else row.nights_used
        values.update(night=night, night_rows=0, nights_used=used + 1)
    return store.update_background(entity, **values)


def _skip(job: BackgroundRun, entity: str, mode: str, why: str) -> NightResult:
    """Record a run that found it must not work (a ``skipped`` batch), and nothing else."""
    store = job.store
    batch = store.start_batch(entity, job.run.run_id, mode, partition_key=job.run.partition_key)
    store.finish_batch(batch, "skipped", error=why)
    log.warning("%s: background run skipped: %s", entity, why)
    return NightResult("skipped", why, batch)


def _finish(store: StateStore, batch: OpenBatch, result: NightResult, done: bool) -> None:
    metrics = {k: v for k, v in result.metrics.items() if k != "duration_ms"}
    finish_batch(
        store,
        batch,
        "succeeded" if done else "paused",
        metrics,
        watermark_from=None,
        watermark_to=None,
        error=None if done else f"paused: {result.reason}",
    )
    if not done:
        store.update_background(batch.entity, status="paused", last_error=None)
