"""Step 9, track: write dead letters and pending children, check conservation, close the batch."""

import time
from datetime import timedelta

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.lifecycle import finish_batch
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.stages.dead_letters import letters_to_close
from syncflow_dagster.stages.failures import ROW
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


def close_obsolete_letters(s: SyncSlice, store: StateStore, letters: pl.DataFrame) -> None:
    """Resolve open dead letters this run superseded or saw recovered."""
    open_letters = store.open_failed(s.entity)
    if open_letters.height == 0:
        return
    fine = None
    if s.fetched_keys is not None:
        failed_keys = letters.get_column("bk_hash").drop_nulls()
        fine = s.fetched_keys.filter(~s.fetched_keys.is_in(failed_keys.implode()))
    superseded, recovered = letters_to_close(open_letters, letters, fine)
    if superseded.len():
        store.mark_failed(
            superseded, "resolved", f"superseded: dead-lettered again by batch {s.batch_id}"
        )
    if recovered.len():
        store.mark_failed(
            recovered,
            "resolved",
            f"recovered: the record arrived in good form in batch {s.batch_id}",
        )


def with_kind(letters: pl.DataFrame, backoff: Backoff) -> pl.DataFrame:
    """Letters with their error kind (permanent unless a step said otherwise).

    A transient letter (its batch never got an answer) is due for the
    failed-records sensor after the first backoff delay.
    """
    kind = pl.col("error_kind").fill_null("permanent")
    first_try = utcnow() + timedelta(seconds=backoff.delay(0))
    return letters.with_columns(
        kind.alias("error_kind"),
        pl.when(kind == "transient")
        .then(pl.lit(first_try, pl.Datetime("us", "UTC")))
        .alias("next_retry_at"),
    )


def track_step(
    s: SyncSlice,
    catalog: EntityCatalog,
    store: StateStore,
    default_tz: str,
    backoff: Backoff | None = None,
    close: bool = True,
) -> SyncSlice:
    """Record the run's outcome; fail loudly when its records do not add up.

    With ``close`` false the slice is one chunk of a longer batch: what it
    settled is committed (state, watermark or pass cursor, letters, waiting
    children) and the batch stays open for the next chunk.

    Raises:
        ConservationError: when a record is missing from every bucket or in two.
    """
    began = time.monotonic()
    rowversion = catalog[s.entity].source.rowversion
    letters = s.dead
    close_obsolete_letters(s, store, letters)
    if letters.height:
        store.add_failed(s.batch_id, s.entity, with_kind(letters.drop(ROW), backoff or Backoff()))
    # A superseded child that waits again keeps its one waiting row (updated in place
    # below, with its attempts); only those that go on are released.
    settled = [x for x in (s.released, s.plan.superseded if s.plan else None) if x is not None]
    if settled:
        keys = pl.concat(settled)
        if s.pending is not None and s.pending.height and keys.len():
            keys = keys.filter(~keys.is_in(s.pending.get_column("bk_hash").implode()))
        if keys.len():
            store.release_pending(s.entity, keys)
    if s.expired is not None and s.expired.len():
        store.expire_pending(s.entity, s.expired)
    if s.pending is not None and s.pending.height:
        store.add_pending(s.entity, s.batch_id, s.pending.drop("_row", strict=False))
    done = s.advance("track", began, metrics={"dead_lettered": s.dead.height})
    metrics = {
        **done.metrics,
        "delete_candidates": s.delete_candidates,
        "expired_children": done.metrics["expired_children"]
        + (0 if s.expired is None else s.expired.len()),
        "duration_ms": int((time.monotonic() - s.started) * 1000),
    }
    problems = conservation_problems(metrics, s.delete_candidates, s.settled)
    mark = None if problems else watermark(s, rowversion)
    if not problems:
        if s.full_pass:
            store.advance_pass(
                s.entity,
                cursor=s.next_cursor,
                rowversion=mark,
                rows=metrics["fetched"],
                finished=s.pass_ends,
                watermark=mark,
            )
        elif not close:
            # A chunk of a longer batch: what it settled is settled now.
            store.advance_watermark(s.entity, mark, cursor=s.next_cursor)
        if s.deletes_checked:
            store.mark_deletes_checked(s.entity)
            store.set_batch_flags(s.batch_id, deletes_checked=True)
    if s.raw_spill is not None:
        s.raw_spill.close()
    if not close:
        check_conservation(metrics, s.delete_candidates, s.settled)
        return s.advance("track", began, metrics=metrics)
    result = dict(
        status="failed" if problems else "succeeded",
        metrics=metrics,
        watermark_from=s.since_rowversion,
        watermark_to=mark,
        error="; ".join(problems) or None,
    )
    if s.batch is not None and not s.full_pass:
        result["watermark_cursor"] = s.next_cursor
    if s.batch is not None:
        finish_batch(store, s.batch, **result)  # type: ignore[arg-type]
    else:
        store.finish_batch(s.batch_id, **result)  # type: ignore[arg-type]
    check_conservation(metrics, s.delete_candidates, s.settled)
    return s.advance("track", began, metrics=metrics)
