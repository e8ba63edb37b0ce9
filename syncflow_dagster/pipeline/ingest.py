"""Step 8, ingest: send the plan to the hub; record state only for what it acknowledged.

Batches of a wave go concurrently (deletes first, then upserts). As answers
arrive, the writer thread (:mod:`state_writer`) is told which batches were
acknowledged and writes their state rows in bulk while sending goes on. A
process killed at any point leaves state only for records the hub has: the
rerun resends the rest, and the hub's idempotency absorbs what it already had.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.schedulehub import BatchOutcome, Rejection, ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.bodies import BatchBodies
from syncflow_dagster.pipeline.resolve import line_expr
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.state_writer import StateWriter, state_writer
from syncflow_dagster.pipeline.transform import column_specs, entity_timezone
from syncflow_dagster.stages.dead_letters import dead_letters, empty_dead_letters
from syncflow_dagster.stages.delta import DELETE, OP
from syncflow_dagster.stages.encode import LINE
from syncflow_dagster.stages.normalize import normalize
from syncflow_dagster.stages.resolve import BLOCKED, NEW, RELEASED, WAVE, named_parents_json

PENDING_CODES = frozenset({"missing_parent", "has_children"})
UNSENT_CODE = "hub_unavailable"
"""Records whose batch the hub never answered, after the client's retries (transient)."""


@dataclass
class Delivery:
    """What the hub answered for a whole plan.

    ``statuses`` counts the hub's answers. A batch that had to be resent may have
    been applied by an attempt whose answer was lost; the hub then answers
    ``unchanged`` (``not_found``) for what that attempt created (deleted), so for
    such batches the outcome is counted from the delta's classification instead.
    """

    statuses: Counter[str] = field(default_factory=Counter)
    rejected: list[pl.DataFrame] = field(default_factory=list)
    unsent: list[pl.DataFrame] = field(default_factory=list)
    """Rows of batches that still failed transiently after the client's retries."""
    batches: int = 0
    resent: int = 0


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


def waves(send: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """The plan's waves in order, each a zero-copy slice (the plan is ordered by wave)."""
    sizes = send.group_by(WAVE, maintain_order=True).len()
    out, offset = [], 0
    for wave, size in sizes.iter_rows():
        out.append((int(wave), send.slice(offset, size)))
        offset += size
    if [w for w, _ in out] != sorted({w for w, _ in out}):
        raise ValueError("the send plan is not ordered by wave")
    return out


def deliver(
    send: pl.DataFrame,
    hub_entity: str,
    hub: ScheduleHubClient,
    writer: StateWriter,
    batch_id: int,
    batch_size: int,
    encode: pl.Expr,
    guard: Callable[[], None] | None = None,
) -> Delivery:
    """Send the plan wave by wave; queue acknowledged rows to ``writer``.

    Each batch's records are encoded (``encode`` for those without a line
    yet) on the sender thread just before the batch goes out; ``guard`` is
    asked first and raises when the run may no longer send (its lease is gone).
    """
    line = pl.coalesce(pl.col(LINE), encode)
    result = Delivery()
    for wave, rows in waves(send):
        wave_id = writer.begin_wave(rows, batch_size)

        def on_outcome(
            outcome: BatchOutcome, rows: pl.DataFrame = rows, wave_id: int = wave_id
        ) -> None:
            result.statuses.update(_outcome_statuses(outcome, rows, batch_size))
            result.batches += 1
            result.resent += outcome.attempts - 1
            rejected: tuple[int, ...] = ()
            if outcome.rejections:
                part = sent_rows(rows, outcome.index, batch_size)
                positions = part.get_column("_gpos")
                rejected = tuple(int(positions[r.position]) for r in outcome.rejections)
                result.rejected.append(
                    _rejected(part.with_columns(line.alias(LINE)), outcome.rejections)
                )
            writer.acknowledge(wave_id, outcome.index, outcome.size, rejected)

        def on_unsent(index: int, exc: BaseException, rows: pl.DataFrame = rows) -> None:
            part = sent_rows(rows, index, batch_size).with_columns(
                line.alias(LINE),
                pl.lit(UNSENT_CODE).alias("code"),
                pl.lit(f"{type(exc).__name__}: {exc}"[:2000]).alias("detail"),
            )
            result.unsent.append(part.drop("_gpos"))

        with BatchBodies(rows, line, batch_size, f"{batch_id}-{wave}") as bodies:
            body = guarded(bodies.body, guard)
            hub.ingest_many(hub_entity, bodies.batches, body, on_outcome, on_unsent)
    return result


def guarded(
    make_body: Callable[[int], tuple[bytes, int]], guard: Callable[[], None] | None
) -> Callable[[int], tuple[bytes, int]]:
    """``make_body`` that first asks ``guard`` whether the run may still send."""
    if guard is None:
        return make_body

    def body(index: int) -> tuple[bytes, int]:
        guard()
        return make_body(index)

    return body


def sent_rows(rows: pl.DataFrame, index: int, batch_size: int) -> pl.DataFrame:
    """The rows batch ``index`` of a wave carried, with ``_gpos``, their place in the wave.

    Waiting children are in the wave but never sent.
    """
    start = index * batch_size
    part = rows.slice(start, batch_size).with_row_index("_gpos", offset=start)
    return part.filter(~pl.col(BLOCKED))


def _outcome_statuses(outcome: BatchOutcome, rows: pl.DataFrame, batch_size: int) -> Counter[str]:
    """The batch's statuses; for a resent batch, inserts and updates as the delta saw them."""
    if outcome.attempts == 1:
        return outcome.statuses
    part = sent_rows(rows, outcome.index, batch_size).with_row_index("_pos")
    if outcome.rejections:
        rejected = pl.Series([r.position for r in outcome.rejections], dtype=pl.UInt32)
        part = part.filter(~pl.col("_pos").is_in(rejected.implode()))
    deletes = part.filter(pl.col(OP) == DELETE).height
    new = part.filter((pl.col(OP) != DELETE) & pl.col(NEW)).height
    counted: Counter[str] = Counter(
        {"created": new, "updated": part.height - deletes - new, "deleted": deletes}
    )
    counted["rejected"] = len(outcome.rejections)
    return +counted


def rejected_letters(
    s: SyncSlice, catalog: EntityCatalog, fails: pl.DataFrame, default_tz: str
) -> pl.DataFrame:
    """Dead letters of fetched records the hub rejected, with all three forms.

    The slice no longer carries the normalized frame (memory); the few rejected
    records are normalized again from their raw form, and their mapped form is
    the ``data`` they were sent with.
    """
    if fails.height == 0:
        return empty_dead_letters()
    cfg = catalog[s.entity]
    raw_rows = s.raw_rows(fails.get_column("_row"))
    renormalized = normalize(
        raw_rows, column_specs(cfg, s.source_columns), entity_timezone(cfg, default_tz)
    ).frame
    sent = fails.select(
        "_row", "bk_hash", pl.col(LINE).str.json_path_match("$.data").alias("mapped")
    )
    return dead_letters(
        "ingest",
        fails.select("_row", "code", "detail"),
        raw_rows,
        cfg.source.key,
        cfg.source.rowversion,
        normalized=renormalized,
        mapped=sent,
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
    sending = bool(s.plan.send.height)
    if sending:
        # Until every answer is in the state, the hub may hold what the state does not know.
        store.set_batch_flags(s.batch_id, hub_unsettled=True)
    with state_writer(store, s.entity, s.batch_id) as writer:
        delivery = deliver(
            s.plan.send,
            cfg.target.entity,
            hub,
            writer,
            s.batch_id,
            batch_size,
            line_expr(catalog, s.entity),
            guard=s.batch.keeper.check if s.batch and s.batch.keeper else None,
        )
    if sending and not delivery.unsent:
        # Every answer is in the state. (Unanswered batches may have been applied: the
        # flag stays, and the next run corrects the state from the hub first.)
        store.set_batch_flags(s.batch_id, hub_unsettled=False)
    no_answer = s.plan.send.clear().with_columns(
        pl.lit(None, pl.String).alias("code"), pl.lit(None, pl.String).alias("detail")
    )
    rejected = pl.concat(delivery.rejected) if delivery.rejected else no_answer
    unsent = pl.concat(delivery.unsent, how="diagonal_relaxed") if delivery.unsent else no_answer
    # Of what got no answer, records with a raw form are dead letters that the
    # failed-records sensor retries; deletes and released children wait again.
    waits = pl.concat(
        [
            rejected.filter(pl.col("code").is_in(list(PENDING_CODES))),
            unsent.filter(pl.col("_row").is_null()),
        ],
        how="diagonal_relaxed",
    )
    fails = rejected.filter(~pl.col("code").is_in(list(PENDING_CODES)))
    transient = unsent.filter(pl.col("_row").is_not_null())
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
                rejected_letters(
                    s, catalog, fails.filter(pl.col("_row").is_not_null()), default_tz
                ),
                rejected_letters(s, catalog, transient, default_tz).with_columns(
                    pl.lit("transient").alias("error_kind")
                ),
                fails.filter(pl.col(RELEASED)).select(
                    "bk_hash",
                    "rowversion",
                    pl.lit("ingest").alias("stage"),
                    "code",
                    "detail",
                    pl.col(LINE).str.json_path_match("$.data").alias("mapped"),
                ),
            ],
            how="diagonal_relaxed",
        )
    )
    acked = set(delivery.statuses) - {"rejected"}
    st = delivery.statuses
    released_ok = s.plan.send.filter(pl.col(RELEASED)).join(
        pl.concat([rejected.select("bk_hash"), unsent.select("bk_hash")]), on="bk_hash", how="anti"
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
            "ingest_failed": fails.height + transient.height,
            "pending_children": pending.height,
        },
    )
