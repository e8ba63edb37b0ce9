"""Step 8, ingest: send the plan to the hub; record state only for what it acknowledged.

Batches of a wave go concurrently (deletes first, then upserts). As answers
arrive, the acknowledged records of each batch are handed to a writer thread
that upserts (or deletes) their state rows in bulk, so the state writes overlap
with the sending. A process killed at any point leaves state only for records
the hub has: the rerun resends the rest, and the hub's idempotency absorbs what
it already had.
"""

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.schedulehub import BatchOutcome, Rejection, ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.transform import column_specs, entity_timezone
from syncflow_dagster.stages.dead_letters import dead_letters
from syncflow_dagster.stages.delta import DELETE, OP
from syncflow_dagster.stages.encode import LINE, batch_body
from syncflow_dagster.stages.normalize import normalize
from syncflow_dagster.stages.resolve import RELEASED, WAVE, named_parents_json

PENDING_CODES = frozenset({"missing_parent", "has_children"})
FLUSH_ROWS = 100_000


class StateWriter:
    """Writes acknowledged state rows on a thread of its own, in bulk."""

    def __init__(self, store: StateStore, entity: str, batch_id: int, flush_rows: int = FLUSH_ROWS):
        self._store = store
        self._entity = entity
        self._batch_id = batch_id
        self._flush_rows = flush_rows
        self._queue: queue.Queue[tuple[str, pl.DataFrame] | None] = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"state-writer-{entity}", daemon=True)
        self._thread.start()

    def put(self, op: str, rows: pl.DataFrame) -> None:
        """Queue acknowledged rows (``op`` is ``upsert`` or ``delete``)."""
        if self._error is not None:
            raise self._error
        if rows.height:
            self._queue.put((op, rows))

    def _flush(self, op: str, parts: list[pl.DataFrame]) -> None:
        if not parts:
            return
        rows = pl.concat(parts)
        if op == DELETE:
            self._store.delete_state(self._entity, rows.get_column("bk_hash"))
        else:
            self._store.upsert_state(
                self._entity, rows.select("bk_hash", "data_hash", "rowversion"), self._batch_id
            )

    def _run(self) -> None:
        buffered: dict[str, list[pl.DataFrame]] = {"upsert": [], DELETE: []}
        sizes = {"upsert": 0, DELETE: 0}
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                op, rows = item
                buffered[op].append(rows)
                sizes[op] += rows.height
                if sizes[op] >= self._flush_rows:
                    self._flush(op, buffered[op])
                    buffered[op], sizes[op] = [], 0
            for op, parts in buffered.items():
                self._flush(op, parts)
        except BaseException as exc:
            self._error = exc
            while self._queue.get() is not None:
                pass

    def close(self) -> None:
        """Flush what is left and wait for the writes; raise the writer's failure, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def state_writer(store: StateStore, entity: str, batch_id: int) -> Iterator[StateWriter]:
    """A writer that is always closed; a failure while sending still flushes what was acknowledged."""
    writer = StateWriter(store, entity, batch_id)
    try:
        yield writer
    finally:
        writer.close()


@dataclass
class Delivery:
    """What the hub answered for a whole plan."""

    statuses: Counter[str] = field(default_factory=Counter)
    rejected: list[pl.DataFrame] = field(default_factory=list)
    batches: int = 0
    resent: int = 0


def _acknowledged(rows: pl.DataFrame, rejections: list[Rejection]) -> pl.DataFrame:
    if not rejections:
        return rows
    positions = pl.Series([r.position for r in rejections], dtype=pl.UInt32)
    return rows.with_row_index("_pos").filter(~pl.col("_pos").is_in(positions.implode())).drop("_pos")


def _rejected(rows: pl.DataFrame, rejections: list[Rejection]) -> pl.DataFrame:
    picked = rows.with_row_index("_pos").join(
        pl.DataFrame(
            {
                "_pos": [r.position for r in rejections],
                "code": [r.code for r in rejections],
                "detail": [r.detail for r in rejections],
            },
            schema={"_pos": pl.UInt32, "code": pl.String, "detail": pl.String},
        ),
        on="_pos",
    )
    return picked.drop("_pos")


def deliver(
    send: pl.DataFrame,
    hub_entity: str,
    hub: ScheduleHubClient,
    writer: StateWriter,
    batch_id: int,
    batch_size: int,
) -> Delivery:
    """Send the plan wave by wave; queue acknowledged rows to ``writer``."""
    result = Delivery()
    for wave in sorted(send.get_column(WAVE).unique().to_list()):
        rows = send.filter(pl.col(WAVE) == wave)
        n_batches = -(-rows.height // batch_size)
        lines = rows.get_column(LINE)

        def make_body(i: int, lines: pl.Series = lines, wave: int = wave) -> tuple[bytes, int]:
            part = lines.slice(i * batch_size, batch_size)
            return batch_body(part, f"{batch_id}-{wave}-{i}"), part.len()

        wave_ops = rows.get_column(OP).unique().to_list()
        single_op = str(wave_ops[0]) if len(wave_ops) == 1 else None

        def on_outcome(
            outcome: BatchOutcome, rows: pl.DataFrame = rows, single_op: str | None = single_op
        ) -> None:
            part = rows.slice(outcome.index * batch_size, outcome.size)
            result.statuses.update(outcome.statuses)
            result.batches += 1
            result.resent += outcome.attempts - 1
            acked = _acknowledged(part, outcome.rejections)
            if single_op is not None:
                writer.put(single_op, acked)
            else:
                for op in (DELETE, "upsert"):
                    writer.put(op, acked.filter(pl.col(OP) == op))
            if outcome.rejections:
                result.rejected.append(_rejected(part, outcome.rejections))

        hub.ingest_many(hub_entity, n_batches, make_body, on_outcome)
    return result


def rejected_letters(
    s: SyncSlice, catalog: EntityCatalog, fails: pl.DataFrame, default_tz: str
) -> pl.DataFrame:
    """Dead letters of fetched records the hub rejected, with all three forms.

    The slice no longer carries the normalized frame (memory); the few rejected
    records are normalized again from their raw form, and their mapped form is
    the ``data`` they were sent with.
    """
    if fails.height == 0:
        return dead_letters("ingest", fails, s.raw, (), None)
    cfg = catalog[s.entity]
    raw_rows = s.raw.join(fails.select("_row"), on="_row", how="semi")
    renormalized = normalize(
        raw_rows, column_specs(cfg, s.source_columns), entity_timezone(cfg, default_tz)
    ).frame
    sent = fails.select(
        "_row", "bk_hash", pl.col(LINE).str.json_path_match("$.data").alias("mapped")
    )
    return dead_letters(
        "ingest", fails.select("_row", "code", "detail"), s.raw, cfg.source.key,
        cfg.source.rowversion, normalized=renormalized, mapped=sent,
    )


def ingest_step(
    s: SyncSlice,
    catalog: EntityCatalog,
    hub: ScheduleHubClient,
    store: StateStore,
    batch_size: int,
    default_tz: str,
) -> SyncSlice:
    """Deliver the plan; rejections become pending children or dead letters."""
    began = time.monotonic()
    cfg = catalog[s.entity]
    assert s.plan is not None, "resolve runs before ingest"
    with state_writer(store, s.entity, s.batch_id) as writer:
        delivery = deliver(s.plan.send, cfg.target.entity, hub, writer, s.batch_id, batch_size)
    rejected = (
        pl.concat(delivery.rejected)
        if delivery.rejected
        else s.plan.send.clear().with_columns(pl.lit(None, pl.String).alias("code"), pl.lit(None, pl.String).alias("detail"))
    )
    waits = rejected.filter(pl.col("code").is_in(list(PENDING_CODES)))
    fails = rejected.filter(~pl.col("code").is_in(list(PENDING_CODES)))
    parents = [p.entity for p in cfg.parents]
    requeued = waits.select(
        "bk_hash",
        "rowversion",
        pl.col(LINE).alias("payload"),
        pl.coalesce("waiting_for", named_parents_json(parents)).alias("waiting_for"),
        "_row",
    )
    pending = pl.concat([s.pending, requeued]) if s.pending is not None else requeued
    dead = s.with_dead(
        pl.concat(
            [
                rejected_letters(s, catalog, fails.filter(pl.col("_row").is_not_null()), default_tz),
                fails.filter(pl.col(RELEASED)).select(
                    "bk_hash", "rowversion", pl.lit("ingest").alias("stage"), "code", "detail",
                    pl.col(LINE).str.json_path_match("$.data").alias("mapped"),
                ),
            ],
            how="diagonal_relaxed",
        )
    )
    acked = set(delivery.statuses) - {"rejected"}
    st = delivery.statuses
    released_ok = s.plan.send.filter(pl.col(RELEASED)).join(
        rejected.select("bk_hash"), on="bk_hash", how="anti"
    )
    return s.advance(
        "ingest",
        began,
        dead=dead,
        pending=pending,
        released=released_ok.get_column("bk_hash"),
        metrics={
            "inserted": st["created"],
            "updated": st["updated"],
            "deleted": st["deleted"] + st["not_found"],
            "unchanged": s.metrics["unchanged"] + st["unchanged"],
            "ingested": sum(st[k] for k in acked),
            "ingest_failed": fails.height,
            "pending_children": pending.height,
        },
    )
