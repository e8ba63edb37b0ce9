"""Retry dead letters: their raw form goes through the stages again, in a batch of its own.

A letter keeps the record as it was fetched (``raw``: the text values, or for a
``fetch`` letter the NDJSON line that could not be read). Retrying letters
means, per entity (parents first):

1. take the entity's lease and open a batch (mode ``retry``) — one run per entity;
2. mark the letters ``retrying`` (action ``retry``, with the reason given);
3. read their raw forms back into a raw frame (text columns, ``_row``), and
   run normalize → validate → map → identity → delta → resolve → ingest →
   track exactly as a sync run does, so every letter's record ends in one
   bucket and track checks conservation;
4. close each letter with its outcome: ``resolved`` with ``retried: delivered
   / unchanged / pending in batch N``, or — when the record fails again —
   superseded by the new letter, which carries the old one's attempts + 1,
   its history, and (when it is transient) the next retry time from the
   backoff (none once the attempts are spent).

If the batch fails as a whole (the hub unreachable, the lease lost), the
letters are reopened with ``attempts + 1`` and, for a transient error, the
next retry time. Letters that cannot be retried are not put in a batch:
those without a raw form (a waiting child's letter), those a newer version
of the record at the hub makes obsolete, and older letters of a record also
selected in a newer version.
"""

import io
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson
import polars as pl

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import LeaseHeldError, StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.edges.state.failed import action_entry, with_action
from syncflow_dagster.errors import ConfigurationError, TransientError, error_kind
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.delta import delta_step
from syncflow_dagster.pipeline.fetch import present_keys, source_columns
from syncflow_dagster.pipeline.identity import identity_step
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.lifecycle import (
    OpenBatch,
    RunInfo,
    fail_batch,
    finish_batch,
    open_run_batch,
)
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.slice import SyncSlice
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.pipeline.transform import (
    check_against_hub,
    map_step,
    normalize_step,
    validate_step,
)
from syncflow_dagster.stages.dead_letters import DEAD_LETTER_SCHEMA
from syncflow_dagster.stages.delta import bk_key
from syncflow_dagster.stages.failures import ROW

log = logging.getLogger(__name__)

Outcome = str
"""What became of a letter: one of :data:`OUTCOMES`."""

OUTCOMES = (
    "delivered",  # sent again and acknowledged by the hub: resolved
    "unchanged",  # the hub has the record in this version already: resolved
    "pending",  # now waits for a parent in pending_children: resolved
    "failed_again",  # dead-lettered again: superseded by the new letter
    "retry_failed",  # the batch failed as a whole: reopened, attempts + 1
    "obsolete",  # not retried: the hub has a newer version, or a newer letter was selected
    "skipped",  # not retried and not changed (see the detail)
)

_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException)


@dataclass(frozen=True)
class LetterOutcome:
    """What became of one dead letter."""

    id: int
    entity: str
    outcome: Outcome
    detail: str
    batch_id: int | None = None


@dataclass(frozen=True)
class EntityRedo:
    """One entity's retry batch (None when no letter of it got that far)."""

    entity: str
    batch_id: int | None
    letters: int
    metrics: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None


@dataclass
class RedoOutcome:
    """Everything a retry of dead letters did."""

    letters: list[LetterOutcome] = field(default_factory=list)
    batches: list[EntityRedo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No entity's retry failed as a whole (letters failing again is not an error)."""
        return all(b.error is None for b in self.batches)

    def counts(self) -> dict[str, int]:
        """How many letters had each outcome (only outcomes that occurred)."""
        return dict(Counter(o.outcome for o in self.letters))

    def summary(self) -> str:
        """The outcome in one line, for logs and the command line."""
        counts = self.counts()
        parts = [f"{counts[o]} {o.replace('_', ' ')}" for o in OUTCOMES if counts.get(o)]
        failed = [f"{b.entity}: {b.error}" for b in self.batches if b.error]
        text = ", ".join(parts) or "nothing to retry"
        return text + (f"; failed: {'; '.join(failed)}" if failed else "")


def redo_failed(
    catalog: EntityCatalog,
    ids: Iterable[int],
    hub: ScheduleHubClient,
    store: StateStore,
    run: RunInfo,
    default_tz: str,
    batch_size: int,
    *,
    source: ApiSmithClient | None = None,
    backoff: Backoff | None = None,
    reason: str = "",
) -> RedoOutcome:
    """Retry the dead letters ``ids`` through the stages, one retry batch per entity.

    Args:
        catalog: the entity configuration.
        ids: the letters; only unsettled ones (``open``, or ``retrying`` left
            over from a retry that died) are retried, the others are skipped.
        hub: the ScheduleHub client.
        store: the state store.
        run: the run (its id holds the entities' leases).
        default_tz: the ERP's time zone (``ERP_TIMEZONE``).
        batch_size: records per ingest request (an entity's ``sync.batch_size`` wins).
        source: APISmith, for the column types of entities whose YAML declares
            none (``source.columns``); without it such entities' letters fail
            the retry with a configuration error.
        backoff: when transient letters are tried again (default: :class:`Backoff`).
        reason: why (recorded with the ``retry`` action on every letter).

    Returns:
        Each letter's outcome and each entity's batch. Entities are retried
        parents first, so a parent retried with its children arrives first.
    """
    backoff = backoff or Backoff()
    wanted = sorted({int(i) for i in ids})
    out = RedoOutcome()
    if not wanted:
        return out
    letters = store.list_failed(status=None, ids=wanted, limit=None)
    found = set(letters.get_column("id").to_list())
    for missing in (i for i in wanted if i not in found):
        out.letters.append(LetterOutcome(missing, "", "skipped", "no such dead letter"))
    settled = letters.filter(~pl.col("status").is_in(["open", "retrying"]))
    for row in settled.iter_rows(named=True):
        detail = f"already {row['status']}: {row['resolution'] or 'no resolution recorded'}"
        out.letters.append(LetterOutcome(row["id"], row["entity"], "skipped", detail))
    letters = letters.filter(pl.col("status").is_in(["open", "retrying"]))
    configured = set(catalog.entities)
    order = [e for e in catalog.parent_first() if e in set(letters.get_column("entity"))]
    for row in letters.filter(~pl.col("entity").is_in(list(configured))).iter_rows(named=True):
        detail = f"entity '{row['entity']}' is not configured"
        out.letters.append(LetterOutcome(row["id"], row["entity"], "skipped", detail))
    for entity in order:
        group = letters.filter(pl.col("entity") == entity)
        redo = _EntityRedo(catalog, entity, hub, store, run, default_tz, batch_size, source)
        redo.run(group, backoff, reason, out)
    return out


def read_raw(text: str | None, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    """A letter's raw form as one row of text columns, or None when it cannot be read.

    The raw form of a record is a JSON object of its text values; that of a
    ``fetch`` letter the NDJSON line as sent. Both are read as the fetch reads
    a page (``read_ndjson``, every column text: a JSON number becomes its text).
    """
    if text is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):  # read_ndjson may read a lone surrogate escape
            return None
    else:
        if not isinstance(value, dict):
            return None
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=schema)
    except (*_READ_ERRORS, UnicodeError):
        return None
    return frame if frame.height == 1 else None


def raw_frame(
    letters: pl.DataFrame, read_columns: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The letters' raw forms as a fetched frame, and the letters still unreadable.

    Row ``i`` of ``letters`` becomes the record with ``_row`` = ``i``. A
    ``fetch`` letter whose line had invalid UTF-8 stays unreadable: its text
    holds U+FFFD where the ERP's bytes were, which is not what the ERP holds.

    Returns:
        (``_row`` + text columns of the readable letters, ``_row`` of the others).
    """
    schema: dict[str, pl.DataType] = dict.fromkeys(read_columns, pl.String())
    frames: list[pl.DataFrame] = []
    unreadable: list[int] = []
    for i, (stage, code, raw) in enumerate(letters.select("stage", "code", "raw").iter_rows()):
        row = None if (stage, code) == ("fetch", "invalid_utf8") else read_raw(raw, schema)
        if row is None:
            unreadable.append(i)
        else:
            frames.append(row.select(pl.lit(i, dtype=pl.UInt32).alias(ROW), *read_columns))
    empty = pl.DataFrame(schema={ROW: pl.UInt32(), **schema})
    records = pl.concat(frames) if frames else empty
    return records, pl.DataFrame({ROW: unreadable}, schema={ROW: pl.UInt32()})


def still_unreadable(letters: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Dead letters (stage ``fetch``) for the letters whose raw form still cannot be read.

    A ``fetch`` letter keeps its code and detail (the line is what it was); any
    other letter whose raw form is not a record gets ``raw_unreadable``.
    """
    picked = rows.join(
        letters.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.UInt32)), on=ROW
    )
    was_fetch = pl.col("stage") == "fetch"
    given = {
        ROW: pl.col(ROW),
        "bk_hash": pl.col("bk_hash"),
        "source_key": pl.col("source_key"),
        "rowversion": pl.col("rowversion"),
        "stage": pl.lit("fetch"),
        "code": pl.when(was_fetch).then(pl.col("code")).otherwise(pl.lit("raw_unreadable")),
        "detail": pl.when(was_fetch)
        .then(pl.col("detail"))
        .otherwise(pl.lit("the letter's raw form is not a readable record")),
        "raw": pl.col("raw"),
    }
    return picked.select(
        [
            given.get(name, pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in DEAD_LETTER_SCHEMA.items()
        ]
    )


def newest_per_record(letters: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split letters into the newest of each record and the older ones it makes obsolete.

    A record is its BK_HASH, else its raw key (``source_key``), else the letter
    itself; newest: the highest rowversion, then the latest letter.
    """
    keyed = letters.with_columns(
        pl.coalesce("bk_hash", "source_key", pl.col("id").cast(pl.String)).alias("_record")
    ).sort(["rowversion", "id"], nulls_last=False)
    newest = keyed.unique("_record", keep="last", maintain_order=True)
    older = keyed.join(newest.select("id"), on="id", how="anti")
    newest_of = older.join(
        newest.select("_record", pl.col("id").alias("_newer")), on="_record", how="left"
    )
    return newest.drop("_record").sort("id"), newest_of.drop("_record").sort("id")


def obsolete_at_hub(store: StateStore, entity: str, letters: pl.DataFrame) -> pl.DataFrame:
    """Letters whose record the hub already has in a newer version (``_state_rv``).

    Sending them would put an older version over a newer one. A ``duplicate_key``
    letter (the loser of two rows with one key) is obsolete at an equal rowversion too.
    """
    keyed = letters.filter(pl.col("bk_hash").is_not_null() & pl.col("rowversion").is_not_null())
    if keyed.height == 0:
        return letters.clear().with_columns(pl.lit(None, pl.Int64).alias("_state_rv"))
    state = store.load_state_for(entity, keyed.get_column("bk_hash"))
    joined = keyed.join(
        state.select("bk_hash", pl.col("rowversion").alias("_state_rv")), on="bk_hash"
    )
    newer = pl.col("_state_rv") > pl.col("rowversion")
    tie = (pl.col("_state_rv") == pl.col("rowversion")) & (pl.col("code") == "duplicate_key")
    return joined.filter(newer | tie)


@dataclass
class _EntityRedo:
    catalog: EntityCatalog
    entity: str
    hub: ScheduleHubClient
    store: StateStore
    info: RunInfo
    default_tz: str
    batch_size: int
    source: ApiSmithClient | None

    def run(self, group: pl.DataFrame, backoff: Backoff, reason: str, out: RedoOutcome) -> None:
        """Retry one entity's letters; record every outcome in ``out``."""
        store, entity = self.store, self.entity
        todo = self._set_aside(group, out)
        if todo.height == 0:
            return
        try:
            batch = open_run_batch(store, self.catalog[entity], self.info, "retry")
        except LeaseHeldError as exc:
            for letter_id in todo.get_column("id"):
                out.letters.append(LetterOutcome(letter_id, entity, "skipped", f"{exc}"))
            out.batches.append(EntityRedo(entity, None, 0, error=str(exc), error_kind=exc.kind))
            return
        try:
            marked = store.mark_failed_retrying(todo.get_column("id"), reason)
            # Read them again: what they are now, with the retry in their history.
            letters = store.list_failed(status="retrying", ids=marked, limit=None)
        except BaseException as exc:
            fail_batch(store, batch, exc)
            raise
        if letters.height == 0:
            finish_batch(store, batch, "skipped", {}, watermark_from=None, watermark_to=None)
            for letter_id in todo.get_column("id"):
                detail = "closed meanwhile by another run or person"
                out.letters.append(LetterOutcome(letter_id, entity, "skipped", detail))
            out.batches.append(EntityRedo(entity, batch.batch_id, 0))
            return
        try:
            s, unchanged = self._pipeline(batch, letters, backoff)
        except BaseException as exc:
            self._failed(batch, letters, exc, backoff, out)
            if not isinstance(exc, Exception):
                raise
            return
        self._close(s, unchanged, letters, out)

    def _set_aside(self, group: pl.DataFrame, out: RedoOutcome) -> pl.DataFrame:
        """Close or skip the letters that are not retried; the ones that are."""
        store, entity = self.store, self.entity
        no_raw = group.filter(pl.col("raw").is_null())
        if no_raw.height:
            why = "no raw form to retry from (a waiting child's letter): resolve or discard it"
            ids = store.hold_failed(no_raw.get_column("id"), f"retry refused: {why}")
            out.letters.extend(LetterOutcome(i, entity, "skipped", why) for i in ids)
        group = group.filter(pl.col("raw").is_not_null())
        newest, older = newest_per_record(group)
        for newer_id, rows in older.group_by("_newer", maintain_order=True):
            why = f"obsolete: letter {newer_id[0]} holds a newer form of the record"
            ids = rows.get_column("id").to_list()
            store.resolve_failed(ids, why, action="retry")
            out.letters.extend(LetterOutcome(i, entity, "obsolete", why) for i in ids)
        stale = obsolete_at_hub(store, entity, newest)
        for state_rv, rows in stale.group_by("_state_rv", maintain_order=True):
            why = f"obsolete: the hub has the record in rowversion {state_rv[0]} already"
            ids = rows.get_column("id").to_list()
            store.resolve_failed(ids, why, action="retry")
            out.letters.extend(LetterOutcome(i, entity, "obsolete", why) for i in ids)
        todo = newest.join(stale.select("id"), on="id", how="anti")
        gone = self._gone_from_the_erp(todo)
        if gone.height:
            why = "obsolete: the ERP no longer has the record (it was deleted since)"
            ids = gone.get_column("id").to_list()
            store.resolve_failed(ids, why, action="retry")
            out.letters.extend(LetterOutcome(i, entity, "obsolete", why) for i in ids)
        return todo.join(gone.select("id"), on="id", how="anti")

    def _gone_from_the_erp(self, letters: pl.DataFrame) -> pl.DataFrame:
        """Letters whose record APISmith no longer lists: retrying one would bring it back.

        Asked only when APISmith is at hand and some letter knows its key; a
        letter whose key could not be read stays (its retry reads the line again).
        """
        keyed = letters.filter(pl.col("bk_hash").is_not_null())
        if self.source is None or keyed.height == 0:
            return letters.clear()
        cfg = self.catalog[self.entity]
        tz = cfg.source.timezone or self.default_tz
        listed = present_keys(self.source, cfg, self._columns(), tz)
        return keyed.filter(~bk_key().is_in(listed.implode()))

    def _columns(self) -> dict[str, str]:
        cfg = self.catalog[self.entity]
        if self.source is not None:
            return source_columns(self.catalog, self.entity, self.source)
        if cfg.source.columns is not None:
            return dict(cfg.source.columns)
        raise ConfigurationError(
            f"{self.catalog.where(self.entity, 'source.columns')}: the entity declares no column "
            "types, so retrying its letters needs APISmith to describe them (pass the client)"
        )

    def _pipeline(
        self, batch: OpenBatch, letters: pl.DataFrame, backoff: Backoff
    ) -> tuple[SyncSlice, pl.DataFrame]:
        """Run the letters' records through the steps after fetch, carry history over, track.

        Returns:
            The tracked slice, and the ``_row`` of the records the delta found unchanged.

        Raises:
            TransientError: the entity has unsettled batches (its next sync
                reconciles the state with the hub first).
        """
        began = time.monotonic()
        catalog, entity, store, tz = self.catalog, self.entity, self.store, self.default_tz
        cfg = catalog[entity]
        columns = self._columns()
        required = check_against_hub(catalog, entity, self.hub.entities())
        if store.unreconciled_batches(entity):
            raise TransientError(
                f"'{entity}' has batches that ended with sends the hub may have applied unseen; "
                "its next sync reconciles the state with the hub first: retry after it"
            )
        records, unreadable = raw_frame(letters, cfg.read_columns)
        dead = still_unreadable(letters, unreadable)
        s = SyncSlice(
            entity=entity,
            batch_id=batch.batch_id,
            batch=batch,
            mode="retry",
            source_columns=columns,
            raw=records,
            frame=records,
            dead=dead,
        )
        s = s.advance(
            "fetch",
            began,
            metrics={"fetched": letters.height, "fetch_failed": dead.height},
        )
        s = normalize_step(s, catalog, tz)
        s = validate_step(s, catalog, tz)
        s = map_step(s, catalog, tz, required)
        s = identity_step(s, catalog)
        identified = s.frame.select(ROW)
        s = delta_step(s, store)
        unchanged = identified.join(s.frame.select(ROW), on=ROW, how="anti")
        s = resolve_step(s, catalog, store)
        size = min(cfg.sync.batch_size or self.batch_size, 1000)
        s = ingest_step(s, catalog, self.hub, store, size, tz)
        s = replace(s, dead=self._carry_over(s.dead, letters, batch.batch_id, backoff))
        return track_step(s, catalog, store, tz), unchanged

    def _carry_over(
        self, dead: pl.DataFrame, letters: pl.DataFrame, batch_id: int, backoff: Backoff
    ) -> pl.DataFrame:
        """The batch's new letters; those of retried records carry on their letter's history.

        attempts + 1, the old actions with one more entry, the kind (the new
        failure's own, else the old letter's when it failed at the same stage
        with the same code, else permanent) and, for a transient one, when it
        is due again.
        """
        now = utcnow()
        old = letters.with_row_index(ROW).select(
            pl.col(ROW).cast(pl.UInt32),
            pl.col("id").alias("_old_id"),
            pl.col("stage").alias("_old_stage"),
            pl.col("code").alias("_old_code"),
            pl.col("error_kind").alias("_old_kind"),
            pl.col("attempts").alias("_old_attempts"),
            pl.col("actions").alias("_old_actions"),
        )
        joined = dead.join(old, on=ROW, how="left")
        own_kind = pl.col("error_kind") if "error_kind" in dead.columns else pl.lit(None, pl.String)
        same = (pl.col("stage") == pl.col("_old_stage")) & (pl.col("code") == pl.col("_old_code"))
        kind = pl.coalesce(
            own_kind,
            pl.when(same).then(pl.col("_old_kind")),
            pl.when(pl.col("_old_id").is_not_null()).then(pl.lit("permanent")),
        )
        joined = joined.with_columns(
            kind.alias("error_kind"),
            (pl.col("_old_attempts") + 1).fill_null(0).alias("attempts"),
        )
        due: list[datetime | None] = []
        actions: list[str | None] = []
        for old_id, k, attempts, history in joined.select(
            "_old_id", "error_kind", "attempts", "_old_actions"
        ).iter_rows():
            if old_id is None:
                due.append(None)
                actions.append(None)
                continue
            due.append(backoff.next_retry_at(now, attempts) if k == "transient" else None)
            entry = action_entry(
                "retried",
                f"dead-lettered again by retry batch {batch_id} (attempt {attempts}); "
                f"supersedes letter {old_id}",
                now,
            )
            actions.append(with_action(history, entry))
        return joined.with_columns(
            pl.Series("next_retry_at", due, dtype=pl.Datetime("us", "UTC")),
            pl.Series("actions", actions, dtype=pl.String),
        ).drop("_old_id", "_old_stage", "_old_code", "_old_kind", "_old_attempts", "_old_actions")

    def _close(
        self, s: SyncSlice, unchanged: pl.DataFrame, letters: pl.DataFrame, out: RedoOutcome
    ) -> None:
        """Close every retried letter with the bucket its record ended in."""
        store, entity, batch_id = self.store, self.entity, s.batch_id
        rows = letters.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.UInt32))
        mine = rows.select(ROW)

        def hit(frame: pl.DataFrame | None) -> pl.DataFrame:
            if frame is None or ROW not in frame.columns:
                return mine.clear()
            picked = frame.select(pl.col(ROW).cast(pl.UInt32)).drop_nulls().unique()
            return picked.join(mine, on=ROW, how="semi")

        dead, pending = hit(s.dead), hit(s.pending)
        buckets: dict[str, pl.DataFrame] = {
            "failed_again": dead,
            "pending": pending.join(dead, on=ROW, how="anti"),
            "unchanged": hit(unchanged),
        }
        taken = pl.concat(list(buckets.values()))
        buckets["delivered"] = mine.join(taken, on=ROW, how="anti")
        codes = {
            r: f"{stage}/{code}"
            for r, stage, code in (s.dead.select(ROW, "stage", "code").drop_nulls(ROW).iter_rows())
        }
        for outcome, picked in buckets.items():
            chosen = rows.join(picked, on=ROW, how="semi")
            if chosen.height == 0:
                continue
            ids = chosen.get_column("id").to_list()
            if outcome == "failed_again":
                why = f"superseded: dead-lettered again by retry batch {batch_id}"
                store.resolve_failed(ids, why, action="retried", statuses=("retrying",))
                for r, letter_id in chosen.select(ROW, "id").iter_rows():
                    detail = f"{why} ({codes.get(r, '?')})"
                    out.letters.append(LetterOutcome(letter_id, entity, outcome, detail, batch_id))
                continue
            why = f"retried: {outcome} in batch {batch_id}"
            store.resolve_failed(ids, why, action="retried", statuses=("retrying",))
            out.letters.extend(LetterOutcome(i, entity, outcome, why, batch_id) for i in ids)
        out.batches.append(EntityRedo(entity, batch_id, letters.height, dict(s.metrics)))

    def _failed(
        self,
        batch: OpenBatch,
        letters: pl.DataFrame,
        exc: BaseException,
        backoff: Backoff,
        out: RedoOutcome,
    ) -> None:
        """The batch failed as a whole: close it, reopen the letters with one more attempt."""
        store, entity = self.store, self.entity
        fail_batch(store, batch, exc)
        kind = error_kind(exc)
        message = f"{type(exc).__name__}: {exc}"[:500]
        now = utcnow()
        for attempts, rows in letters.group_by("attempts", maintain_order=True):
            tries = int(attempts[0]) + 1
            due = backoff.next_retry_at(now, tries) if kind == "transient" else None
            why = f"retry batch {batch.batch_id} failed ({kind}): {message}"
            store.bump_failed_attempt(rows.get_column("id"), due, why)
        for letter_id in letters.get_column("id"):
            detail = f"retry batch {batch.batch_id} failed ({kind}): {message}"
            out.letters.append(LetterOutcome(letter_id, entity, "retry_failed", detail))
        out.batches.append(
            EntityRedo(entity, batch.batch_id, letters.height, error=message, error_kind=kind)
        )
        log.warning("retry of %d dead letter(s) of %s failed: %s", letters.height, entity, message)
