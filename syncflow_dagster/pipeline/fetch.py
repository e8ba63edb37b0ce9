"""Step 1, fetch: open the batch, read the run's records, and find what the ERP deleted.

Where a run starts reading:

* ``incremental`` — above the entity's watermark (every record up to it is settled);
* ``full`` — a pass over the whole entity in (rowversion, key) order. A pass
  cut short by the run's row limit is resumed by the next full run from where
  it stopped (``sync_positions``), so a capped pass gets through the whole
  table over several runs, and sees the rows changed meanwhile (their new
  rowversions sort last).

Deletes are keys the state has and the ERP no longer has. A run that read the
whole entity from its first record knows every key; any other run compares
APISmith's ``/keys`` listing with the state when the entity's ``sync.deletes``
policy says so (``every_run`` by default), when a full pass ends, and after
an unclean run was reconciled with the hub.
"""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl

from syncflow_dagster.config.loader import ConfigError, EntityCatalog, check_against_source
from syncflow_dagster.config.models import EntityConfig
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import Position, StateStore
from syncflow_dagster.edges.state.base import utcnow
from syncflow_dagster.pipeline.keys import key_hashes
from syncflow_dagster.pipeline.lifecycle import OpenBatch, RunInfo, fail_batch, open_run_batch
from syncflow_dagster.pipeline.raw_spill import RawSpill
from syncflow_dagster.pipeline.reconcile import reconcile_with_hub
from syncflow_dagster.pipeline.slice import Mode, SyncSlice
from syncflow_dagster.stages.dead_letters import unreadable_letters
from syncflow_dagster.stages.delta import KEY, compare_with_state, find_deletes, key_set, rows_mask
from syncflow_dagster.stages.failures import ROW

# Slices at least this big keep their raw form on disk once past the map step.
SPILL_ROWS = 100_000

# APISmith's key listing is hashed this many keys at a time.
LISTING_SLICE = 500_000

# A full run reads the whole state of its entity (one sequential scan) unless
# the state has more than this many times the rows the run may fetch: then it
# looks up the fetched keys only (a chunk of a multi-night pass over a big table).
# Chosen for memory: a chunk then holds at most its own keys' state. Time is
# about even: in the 7M background benchmark (chunks of 200k, state 1M-6M) the
# chunks' median times were within 8 % of those with whole-state loads
# (docs/BENCHMARKS.md, the runs of 2026-12-04 22:07 and 22:45 UTC).
WHOLE_STATE_FACTOR = 4


@dataclass(frozen=True)
class ReadPlan:
    """Where a run starts reading, and whether it compares keys for deletes."""

    mode: Mode
    since: int | None
    resumes_pass: bool
    check_deletes: bool
    cursor: str | None = None
    """APISmith's cursor where an open full pass resumes (``since`` is its fallback)."""

    @property
    def from_start(self) -> bool:
        """The run reads the entity from its first record."""
        return self.since is None and self.cursor is None


def source_columns(catalog: EntityCatalog, entity: str, client: ApiSmithClient) -> dict[str, str]:
    """The entity's source column types, checked against APISmith's ``/entities``.

    Declared columns (``source.columns``) must all be served: a column the ERP
    does not have would otherwise arrive as null in every record.

    Raises:
        ConfigError: naming the file, entity and field when a column does not
            exist at the source.
    """
    cfg = catalog[entity]
    described = client.entity(cfg.source.entity)
    declared = cfg.source.columns
    if declared is not None:
        missing = [c for c in declared if c not in described.columns]
        if missing:
            served = ", ".join(sorted(described.columns))
            raise ConfigError(
                f"{catalog.where(entity, f'source.columns.{missing[0]}')}: APISmith entity "
                f"'{cfg.source.entity}' has no column {', '.join(missing)} (it serves: {served})"
            )
        return dict(declared)
    check_against_source(cfg, described.columns, catalog=catalog)
    return dict(described.columns)


def deletes_due(cfg: EntityConfig, position: Position, day_start: datetime | None) -> bool:
    """Whether the entity's ``sync.deletes`` policy asks this run to compare keys."""
    policy = cfg.sync.deletes
    if policy == "every_run":
        return True
    if policy == "never":
        return False
    last = position.deletes_checked_at
    since = day_start or (utcnow() - timedelta(hours=24))
    return last is None or last < since


def plan_read(
    cfg: EntityConfig,
    position: Position,
    mode: Mode,
    stale: bool,
    day_start: datetime | None,
    force_deletes: bool = False,
) -> ReadPlan:
    """Where this run starts reading and whether it looks for deletes.

    Records mapped under another mapping version must be read again: such a
    run reads from the first record (a full pass starts over).
    """
    check = force_deletes or deletes_due(cfg, position, day_start)
    if mode == "full":
        resume = position.pass_open and not stale
        since = position.pass_rowversion if resume else None
        cursor = position.pass_cursor if resume else None
        return ReadPlan(mode, since, resume, check, cursor)
    if stale or cfg.source.rowversion is None:
        return ReadPlan(mode, None, False, check)
    return ReadPlan(mode, position.watermark, False, check, position.watermark_cursor)


def _stale_keys(store: StateStore, entity: str, version: int) -> pl.Series:
    """Keys whose state was written under an earlier mapping version (never settled)."""
    other = store.last_batch_of_other_mapping(entity, version)
    if other is None:
        return pl.Series("bk_hash", [], dtype=pl.String)
    return store.keys_stamped_through(entity, other)


def present_keys(
    client: ApiSmithClient, cfg: EntityConfig, columns: dict[str, str], tz: str
) -> pl.Series:
    """Every key APISmith lists now, as a key set (128-bit BK_HASHes, ``bk_key``).

    Hashed a slice of the listing at a time and kept as integers, so that the
    listing of a big table costs 16 bytes a key, not the hex text's 48.
    """
    listed = client.keys(cfg.source.entity, cfg.source.key)
    parts = [
        key_set(key_hashes(part, cfg, columns, tz).get_column("bk_hash"))
        for part in listed.iter_slices(LISTING_SLICE)
    ]
    return pl.concat(parts) if parts else pl.Series(KEY, [], dtype=pl.UInt128)


def fetch_step(
    catalog: EntityCatalog,
    entity: str,
    client: ApiSmithClient,
    store: StateStore,
    run: RunInfo,
    mode: Mode,
    default_tz: str,
    max_rows: int | None = None,
    hub: ScheduleHubClient | None = None,
    compare: str | None = None,
    batch: OpenBatch | None = None,
    check_deletes: bool | None = None,
) -> SyncSlice:
    """Open the batch and fetch the slice; settle what the hub has; find deletes.

    Records the hub already has in this very version (same rowversion in the
    state, same mapping) are settled here as unchanged and go no further. With
    ``hub`` given, the state is first reconciled with the hub if an earlier
    batch of the entity ended with unsettled sends. ``max_rows`` overrides the
    entity's ``sync.max_rows_per_run``, ``compare`` its ``sync.compare``.
    ``batch``: a batch the caller opened and closes (the chunks of a
    background run share one); by default the step opens one, and closes it
    as failed if it fails. ``check_deletes`` overrides the entity's
    ``sync.deletes`` policy (a background run compares keys in its first
    chunk only); a full pass that ends, or a reconciliation, always compares.
    """
    began = time.monotonic()
    cfg = catalog[entity]
    if cfg.source.rowversion is None:
        mode = "full"
    owned = batch is None
    if batch is None:
        batch = open_run_batch(store, cfg, run, mode)
    try:
        # Before anything is read or sent: every configured column must be served.
        columns = source_columns(catalog, entity, client)
        read = _Read(
            catalog,
            cfg,
            client,
            store,
            run,
            batch,
            mode,
            columns,
            default_tz,
            compare or cfg.sync.compare,
            check_deletes,
        )
        return read.fetch(max_rows, hub, began)
    except BaseException as exc:
        if owned:
            fail_batch(store, batch, exc)
        raise


@dataclass(frozen=True)
class _Read:
    catalog: EntityCatalog
    cfg: EntityConfig
    client: ApiSmithClient
    store: StateStore
    run: RunInfo
    batch: OpenBatch
    mode: Mode
    columns: dict[str, str]
    default_tz: str
    compare: str = "rowversion"
    check_deletes: bool | None = None

    def fetch(self, max_rows: int | None, hub: ScheduleHubClient | None, began: float) -> SyncSlice:
        """Read, settle and compare; the slice that goes on to normalize."""
        catalog, cfg, client, store, run = self.catalog, self.cfg, self.client, self.store, self.run
        batch, mode, columns = self.batch, self.mode, self.columns
        tz = cfg.source.timezone or self.default_tz
        entity = cfg.name
        reconciled = reconcile_with_hub(store, hub, catalog, entity, batch.batch_id) if hub else 0
        stale = _stale_keys(store, entity, store.get_batch(batch.batch_id)["mapping_version"])
        position = store.get_position(entity)
        if mode == "full" and position.pass_open and stale.len():
            store.reset_pass(entity)
        plan = plan_read(cfg, position, mode, bool(stale.len()), run.day_start, reconciled > 0)
        if self.check_deletes is not None and not reconciled:
            plan = replace(plan, check_deletes=self.check_deletes)
        limit = max_rows or cfg.sync.max_rows_per_run
        whole = mode == "full" and (
            limit is None or store.has_at_most(entity, WHOLE_STATE_FACTOR * limit)
        )
        with ThreadPoolExecutor(2, thread_name_prefix="fetch") as pool:
            versions = pool.submit(store.load_versions, entity) if whole else None
            listing: Future[pl.Series] | None = None
            known: Future[pl.Series] | None = None
            if plan.check_deletes and not plan.from_start:
                # The run will not see every key itself: list them while the records come.
                listing = pool.submit(present_keys, client, cfg, columns, tz)
                if versions is None:
                    known = pool.submit(store.load_keys, entity)
            fetched = client.fetch(
                cfg.source.entity,
                cfg.read_columns,
                since_rowversion=plan.since,
                max_rows=limit,
                key_columns=cfg.source.key,
                rowversion=cfg.source.rowversion,
                cursor=plan.cursor,
            )
            raw = fetched.frame.with_row_index(ROW)
            keys = key_hashes(raw, cfg, columns, tz)
            # Unreadable lines are dead letters; their keys, where found, count as present.
            unreadable = with_recovered_keys(
                unreadable_letters(fetched.bad_lines), cfg, columns, tz
            )
            fetched_keys = pl.concat(
                [keys.get_column("bk_hash"), unreadable.get_column("bk_hash").drop_nulls()]
            )
            # A run that read every line from the first knows every key, unless a line
            # whose key could not be read stands for one of them.
            complete = (
                plan.from_start
                and not fetched.truncated
                and unreadable.get_column("bk_hash").null_count() == 0
            )
            pass_ends = mode == "full" and not fetched.truncated
            present: pl.Series | None = None
            if complete:
                present = key_set(fetched_keys)  # the run saw every key the ERP has
            elif listing is not None:
                present = listing.result()
            elif plan.check_deletes or pass_ends:
                present = present_keys(client, cfg, columns, tz)
            if versions is not None:
                state = versions.result()
            else:
                state = store.load_state_for(entity, fetched_keys)
            everything: pl.DataFrame | None = None
            if present is not None:
                if versions is not None:
                    everything = state
                else:
                    loaded = known.result() if known is not None else store.load_keys(entity)
                    everything = loaded.to_frame("bk_hash").with_columns(
                        pl.lit(None, pl.Int64).alias("rowversion")
                    )
        deletes = (
            find_deletes(present, everything, fetched_keys)
            if present is not None and everything is not None
            else None
        )
        # With compare: data_hash nothing is taken as settled by its rowversion: every
        # record read goes on to the delta, which compares data hashes.
        settled = (
            compare_with_state(keys, _rowversions(raw, cfg), state, stale, False).settled
            if state.height and self.compare == "rowversion"
            else pl.Series("_row", [], dtype=pl.UInt32)
        )
        todo = raw.filter(~rows_mask(settled, raw.height)) if settled.len() else raw
        s = SyncSlice(
            entity=entity,
            batch_id=batch.batch_id,
            batch=batch,
            mode=mode,
            source_columns=columns,
            since_rowversion=plan.since,
            truncated=fetched.truncated,
            top_rowversion=_rowversions(raw, cfg).max(),  # type: ignore[arg-type]
            full_pass=mode == "full",
            next_cursor=fetched.next_cursor,
            pass_ends=pass_ends,
            deletes_checked=present is not None,
            raw=todo,
            dead=unreadable,
            raw_spill=RawSpill(todo) if todo.height >= SPILL_ROWS else None,
            frame=todo,
            state=state,
            stale_keys=stale,
            present_keys=None if present is None else present.to_frame(),
            fetched_keys=fetched_keys,
            deletes=deletes,
            delete_candidates=0 if deletes is None else deletes.height,
            settled=settled.len(),
        )
        return s.advance(
            "fetch",
            began,
            metrics={
                "fetched": raw.height + unreadable.height,
                "fetch_failed": unreadable.height,
                "unchanged": settled.len(),
                "reconciled": reconciled,
                "delete_candidates": s.delete_candidates,
            },
        )


def with_recovered_keys(
    letters: pl.DataFrame, cfg: EntityConfig, columns: dict[str, str], tz: str
) -> pl.DataFrame:
    """Unreadable lines' dead letters with the BK_HASH of the key found in them, if any.

    A later good version of the record then closes the letter, and its key is
    never taken for deleted.
    """
    if letters.height == 0:
        return letters
    fields = {name: pl.String() for name in cfg.source.key}
    try:
        found = letters.select(
            pl.col("source_key").str.json_decode(pl.Struct(fields)).alias("_key")
        ).unnest("_key")
    except pl.exceptions.PolarsError:
        return letters
    hashed = key_hashes(found.with_row_index(ROW), cfg, columns, tz)
    by_row = pl.Series("bk_hash", [None] * letters.height, dtype=pl.String).scatter(
        hashed.get_column(ROW), hashed.get_column("bk_hash")
    )
    return letters.with_columns(by_row)


def _rowversions(raw: pl.DataFrame, cfg: EntityConfig) -> pl.Series:
    """Every fetched record's rowversion (null where the entity has none)."""
    if cfg.source.rowversion is None:
        return pl.Series([None] * raw.height, dtype=pl.Int64)
    return raw.get_column(cfg.source.rowversion).str.strip_chars().cast(pl.Int64, strict=False)
