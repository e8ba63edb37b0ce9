"""Step 9, track: write dead letters and pending children, check conservation, close the batch."""

import time

import polars as pl

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.track import check_conservation, conservation_problems


def watermark(s: SyncSlice, rowversion: str | None) -> int | None:
    """The rowversion up to which every record of this run is settled.

    The highest fetched rowversion; one less when the run stopped at its row
    limit (rows sharing the last rowversion may still be unread); the previous
    watermark when nothing was fetched.
    """
    top = s.top_rowversion
    if rowversion is None or top is None:
        return s.since_rowversion
    return int(top) - 1 if s.truncated else int(top)


def track_step(s: SyncSlice, store: StateStore, rowversion: str | None) -> SyncSlice:
    """Record the run's outcome; fail loudly when its records do not add up.

    Raises:
        ConservationError: when a record is missing from every bucket or in two.
    """
    began = time.monotonic()
    if s.dead.height:
        store.add_failed(s.batch_id, s.entity, s.dead)
    # Release first: a superseded child that waits again is queued anew just below.
    settled = [x for x in (s.released, s.plan.superseded if s.plan else None) if x is not None]
    if settled:
        keys = pl.concat(settled)
        if keys.len():
            store.release_pending(s.entity, keys)
    if s.pending is not None and s.pending.height:
        store.add_pending(s.entity, s.batch_id, s.pending.drop("_row", strict=False))
    done = s.advance("track", began, metrics={"dead_lettered": s.dead.height})
    metrics = {**done.metrics, "duration_ms": int((time.monotonic() - s.started) * 1000)}
    problems = conservation_problems(metrics, s.delete_candidates, s.settled)
    store.finish_batch(
        s.batch_id,
        status="failed" if problems else "succeeded",
        metrics=metrics,
        watermark_from=s.since_rowversion,
        watermark_to=None if problems else watermark(s, rowversion),
        error="; ".join(problems) or None,
    )
    check_conservation(metrics, s.delete_candidates, s.settled)
    return s.advance("track", began, metrics=metrics)
