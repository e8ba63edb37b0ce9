"""The emulated ERP: a deterministic manufacturing dataset, its ground truth and its mutations.

``ErpDataset(DatasetSpec(seed=42, work_orders=10_000))`` generates items, work centers,
work orders and their operations (vectorized; a million work orders take seconds), marks a
``bad_fraction`` of rows bad on purpose, assigns ``ORA_ROWSCN`` from one global counter,
and pre-renders every row as the ERP would send it.

* ``ground_truth(entity)`` — the typed true values, with ``_bad`` (why a row is bad, or
  null) and ``_bad_column``; a correct normalizer turns the served raw rows back into it.
* ``update`` / ``insert`` / ``delete`` (random, deterministic given a seed),
  ``insert_rows`` / ``update_keys`` / ``delete_keys`` (explicit) — each returns the
  affected keys and keeps the ground truth and the served data in step.
* ``views(entity)`` — the sorted serving views the HTTP app pages through.
* ``serve_raw_lines`` / ``clear_raw_lines`` — sandbox only: serve exact NDJSON text
  (even bytes that are not UTF-8) for chosen rows instead of their rendering, to test
  how a client copes with lines no correct ERP would send.
* ``save(path)`` / ``ErpDataset.load(path)`` — the whole dataset in one file, written
  atomically; a loaded dataset serves, answers and mutates exactly as the saved one
  would have (the local world keeps its ERP across restarts this way).
"""

import base64
import dataclasses
import io
import os
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import polars as pl

from syncflow_dagster.emulators.apismith import badrows, generate, rng
from syncflow_dagster.emulators.apismith.coerce import MutationError, coerce_keys, coerce_rows
from syncflow_dagster.emulators.apismith.render import render_rows
from syncflow_dagster.emulators.apismith.schema import ENTITIES, ROWVERSION, Entity
from syncflow_dagster.emulators.apismith.store import KeyTuple, KeyView, RecordView, build_views

SAVE_FORMAT = 1
"""Version of the file :meth:`ErpDataset.save` writes."""

SCN_BASE = 10_000_000
"""The first ORA_ROWSCN handed out; rows of the initial load share SCNs in small groups."""

VALUE_KINDS = frozenset({"bad_number", "bad_date", "over_length", "due_before_start"})
"""Bad kinds that live in a row's values: regenerating the values repairs the row."""


@dataclass(frozen=True)
class DatasetSpec:
    """How big the ERP is and how it is seeded; every size but ``work_orders`` has a default."""

    seed: int = 42
    work_orders: int = 1000
    items: int | None = None
    work_centers: int | None = None
    operations_per_order: float = 3.0
    bad_fraction: float = 0.002
    erp_timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        sizes = {"work_orders": self.work_orders, "items": self.items}
        sizes["work_centers"] = self.work_centers
        for name, size in sizes.items():
            if size is not None and size < 0:
                raise ValueError(f"DatasetSpec.{name} must not be negative, got {size}")
        if self.items == 0 and self.work_orders:
            raise ValueError("DatasetSpec: work orders need at least one item")
        if self.work_centers == 0 and self.work_orders and self.operations_per_order:
            raise ValueError("DatasetSpec: operations need at least one work center")
        if self.operations_per_order < 0:
            raise ValueError("DatasetSpec.operations_per_order must not be negative")
        if not 0 <= self.bad_fraction <= 1:
            raise ValueError(f"DatasetSpec.bad_fraction must be in [0, 1], got {self.bad_fraction}")
        try:
            ZoneInfo(self.erp_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"DatasetSpec.erp_timezone: unknown zone {self.erp_timezone!r}"
            ) from None

    @property
    def n_items(self) -> int:
        """Items: ``items`` or max(work_orders // 20, 20)."""
        return self.items if self.items is not None else max(self.work_orders // 20, 20)

    @property
    def n_work_centers(self) -> int:
        """Work centers: ``work_centers`` or max(min(work_orders // 1000, 200), 5)."""
        if self.work_centers is not None:
            return self.work_centers
        return max(min(self.work_orders // 1000, 200), 5)


@dataclass
class _State:
    entity: Entity
    rows: pl.DataFrame
    next_rid: int
    next_ord: int
    rendered: pl.DataFrame = field(default_factory=pl.DataFrame)
    views: tuple[RecordView, KeyView] | None = None
    raw_lines: dict[int, bytes] = field(default_factory=dict)
    """Sandbox: row id -> the exact NDJSON line served for it instead of its rendering."""


def raw_key_exprs(entity: Entity) -> list[pl.Expr]:
    """The key as sent (``_k0``, ``_k1`` ...): an overriding bad value wins over the truth."""
    exprs = []
    for i, col in enumerate(entity.key_columns):
        if col.kind == "number":
            exprs.append(pl.col(col.name).cast(pl.Int64).alias(f"_k{i}"))
        else:
            override = pl.when(pl.col("_bad_col") == col.name).then(pl.col("_ovr_val"))
            exprs.append(pl.coalesce(override, pl.col(col.name)).alias(f"_k{i}"))
    return exprs


def _keys_of(entity: Entity, frame: pl.DataFrame) -> list[KeyTuple]:
    return [tuple(row) for row in frame.select(raw_key_exprs(entity)).iter_rows()]


def _flag_rows(
    entity: Entity, rows: pl.DataFrame, parents: Mapping[str, pl.DataFrame]
) -> pl.DataFrame:
    """Rows with ``_bad`` / ``_bad_column``: stored kinds, then missing or bad parents."""
    bad: pl.Expr = pl.when(pl.col("_kind") != "orphan").then(pl.col("_kind"))
    column: pl.Expr = pl.when(pl.col("_kind") != "orphan").then(pl.col("_bad_col"))
    for ref in entity.parents:
        parent = ENTITIES[ref.parent]
        truth = parents[ref.parent]
        present = truth.select(list(parent.key)).drop_nulls()
        good = truth.filter(pl.col("_bad").is_null()).select(list(parent.key))
        fk = list(ref.columns)
        rename = dict(zip(parent.key, fk, strict=True))
        marks = rows.select("_rid", *fk)
        marks = marks.join(
            present.rename(rename).unique().with_columns(_present=pl.lit(True)), on=fk, how="left"
        ).join(good.rename(rename).unique().with_columns(_good=pl.lit(True)), on=fk, how="left")
        rows = rows.join(
            marks.select(
                "_rid",
                pl.col("_present").fill_null(False).alias(f"_present_{fk[0]}"),
                pl.col("_good").fill_null(False).alias(f"_good_{fk[0]}"),
            ),
            on="_rid",
            how="left",
        )
        present_col, good_col = pl.col(f"_present_{fk[0]}"), pl.col(f"_good_{fk[0]}")
        bad = pl.coalesce(
            bad,
            pl.when(~present_col).then(pl.lit("orphan")),
            pl.when(~good_col).then(pl.lit("parent_bad")),
        )
        column = pl.coalesce(column, pl.when(~good_col).then(pl.lit(fk[0])))
    flagged = rows.with_columns(_bad=bad, _bad_column=column)
    return flagged.select(*entity.column_names, "_rid", "_bad", "_bad_column")


class ErpDataset:
    """The ERP's data: generated once from a spec, then mutated through its methods.

    Thread-safe: the HTTP server reads views while tests mutate in-process.
    """

    def __init__(self, spec: DatasetSpec | None = None) -> None:
        self.spec = spec or DatasetSpec()
        self._lock = threading.RLock()
        self._states: dict[str, _State] = {}
        self._scn = SCN_BASE
        self._build()

    # ------------------------------------------------------------------ saving

    def save(self, path: str | Path) -> None:
        """Write the whole dataset to ``path`` (one zip file, replaced atomically).

        The file holds the spec, the rowversion counter and, per entity, its rows with
        their bookkeeping (Arrow IPC), the next row id and ordinal, and any sandboxed
        raw lines: everything the served answers, the ground truth and later
        mutations depend on. The rendering is not stored: it is a function of the rows.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with self._lock:
            meta = {
                "format": SAVE_FORMAT,
                "spec": dataclasses.asdict(self.spec),
                "scn": self._scn,
                "entities": {
                    name: {
                        "next_rid": state.next_rid,
                        "next_ord": state.next_ord,
                        "raw_lines": {
                            str(rid): base64.b64encode(line).decode()
                            for rid, line in state.raw_lines.items()
                        },
                    }
                    for name, state in self._states.items()
                },
            }
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
                archive.writestr("dataset.json", orjson.dumps(meta))
                for name, state in self._states.items():
                    buffer = io.BytesIO()
                    state.rows.write_ipc(buffer, compression="zstd")
                    archive.writestr(f"{name}.arrow", buffer.getvalue())
        os.replace(partial, target)

    @classmethod
    def load(cls, path: str | Path) -> "ErpDataset":
        """The dataset :meth:`save` wrote to ``path``.

        Raises:
            ValueError: the file is not a saved dataset of this format.
        """
        try:
            with zipfile.ZipFile(path) as archive:
                meta = orjson.loads(archive.read("dataset.json"))
                if meta.get("format") != SAVE_FORMAT:
                    raise ValueError(f"{path}: not a saved ERP dataset of format {SAVE_FORMAT}")
                frames = {
                    name: pl.read_ipc(io.BytesIO(archive.read(f"{name}.arrow")))
                    for name in meta["entities"]
                }
        except (zipfile.BadZipFile, KeyError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a saved ERP dataset ({exc})") from None
        dataset = cls.__new__(cls)
        dataset.spec = DatasetSpec(**meta["spec"])
        dataset._lock = threading.RLock()
        dataset._scn = int(meta["scn"])
        dataset._states = {}
        for name in ENTITIES:  # parents before children, as built
            saved = meta["entities"][name]
            state = _State(
                ENTITIES[name],
                frames[name],
                next_rid=int(saved["next_rid"]),
                next_ord=int(saved["next_ord"]),
                raw_lines={
                    int(rid): base64.b64decode(line) for rid, line in saved["raw_lines"].items()
                },
            )
            state.rendered = render_rows(
                state.rows, state.entity, dataset.spec.seed, dataset.spec.erp_timezone
            )
            dataset._states[name] = state
        for name in dataset._states:
            dataset.views(name)
        return dataset

    # ------------------------------------------------------------------ reading

    @property
    def entities(self) -> dict[str, Entity]:
        """The entities, parents before children."""
        return dict(ENTITIES)

    def entity(self, name: str) -> Entity:
        """The entity called ``name`` (KeyError if there is none)."""
        return ENTITIES[name]

    @property
    def max_rowversion(self) -> int:
        """The highest ORA_ROWSCN handed out so far (across all entities)."""
        return self._scn - 1

    def views(self, name: str) -> tuple[RecordView, KeyView]:
        """The serving views of an entity, sorting afresh after mutations."""
        with self._lock:
            state = self._states[name]
            if state.views is None:
                state.views = build_views(
                    state.rendered, len(state.entity.key), raw_lines=state.raw_lines
                )
            return state.views

    def serve_raw_lines(
        self, name: str, lines: Mapping[tuple[object, ...], bytes | str]
    ) -> list[KeyTuple]:
        """Sandbox: serve these exact lines for the rows with these raw keys.

        Each line (text, or bytes that need not be UTF-8; no newline) replaces the
        NDJSON rendering of every row with that key, in the same place of the
        (rowversion, key) order; the key listing and the ground truth stay as they
        are. A later mutation of the row renders it normally again.

        Raises:
            MutationError: a line holds a newline, or a key matches no row.
        """
        with self._lock:
            state = self._states[name]
            touched: list[KeyTuple] = []
            served: dict[int, bytes] = {}
            for key, line in lines.items():
                data = line.encode() if isinstance(line, str) else bytes(line)
                if b"\n" in data:
                    raise MutationError(f"{name}: a raw line must not hold a newline")
                hit = self._matching(state, [list(key)])
                if hit.height == 0:
                    raise MutationError(f"{name}: no row has the key {list(key)}")
                served.update(dict.fromkeys(hit["_rid"].to_list(), data))
                touched += _keys_of(state.entity, hit)
            state.raw_lines.update(served)  # all or nothing
            state.views = None
            return touched

    def clear_raw_lines(self, name: str) -> None:
        """Sandbox: render every row of ``name`` normally again."""
        with self._lock:
            state = self._states[name]
            state.raw_lines.clear()
            state.views = None

    def ground_truth(self, name: str) -> pl.DataFrame:
        """Typed true values of every row present now, by ``_rid``.

        Columns: the entity's columns (``ORA_ROWSCN`` included), ``_rid`` (a stable row id),
        ``_bad`` (why the row is bad: a kind of ``badrows.BAD_KINDS``, or ``orphan`` /
        ``parent_bad`` when a parent is missing / bad; null for good rows) and
        ``_bad_column``. Unreadable raw values (bad numbers and dates, empty keys) have a
        null true value.
        """
        with self._lock:
            return self._truths()[name]

    def bad_rows(self, name: str) -> pl.DataFrame:
        """The rows of ``ground_truth(name)`` that are bad, with their raw key."""
        with self._lock:
            entity = ENTITIES[name]
            flagged = self._truths()[name].filter(pl.col("_bad").is_not_null())
            raw = self._states[name].rows.select("_rid", *raw_key_exprs(entity))
            return flagged.join(raw, on="_rid", how="left")

    def _truths(self) -> dict[str, pl.DataFrame]:
        truths: dict[str, pl.DataFrame] = {}
        for name, state in self._states.items():
            truths[name] = _flag_rows(state.entity, state.rows, truths).sort("_rid")
        return truths

    # ------------------------------------------------------------------ building

    def _take_scns(self, n: int) -> pl.Series:
        first = self._scn
        self._scn += n
        return pl.Series(ROWVERSION, range(first, first + n), dtype=pl.Int64)

    def _pool(self, name: str, truths: Mapping[str, pl.DataFrame]) -> pl.Series:
        """Keys of good, unique rows: what generated children may name as their parent."""
        entity = ENTITIES[name]
        key = entity.key[0]
        truth = truths[name]
        dups = truth.filter(pl.col("_bad") == "duplicate_key")[key]
        return truth.filter(pl.col("_bad").is_null() & ~pl.col(key).is_in(dups.implode()))[key]

    def _build(self) -> None:
        spec = self.spec
        seed = spec.seed
        frames: dict[str, pl.DataFrame] = {}
        truths: dict[str, pl.DataFrame] = {}

        def finish(name: str, good: pl.DataFrame) -> None:
            entity = ENTITIES[name]
            filled = generate.FILLERS[name](good, generate.Draws(seed, name))
            frame = badrows.inject(filled, entity, seed, spec.bad_fraction, good.height)
            frames[name] = frame
            truths[name] = _flag_rows(
                entity, frame.with_columns(pl.lit(0).alias(ROWVERSION)), truths
            )

        def base(n: int) -> tuple[pl.Series, pl.Series]:
            return pl.Series(range(n), dtype=pl.Int64), pl.Series(range(1, n + 1), dtype=pl.Int64)

        finish("items", generate.skeleton_items(*base(spec.n_items)))
        finish("work_centers", generate.skeleton_work_centers(*base(spec.n_work_centers)))
        finish(
            "work_orders",
            generate.skeleton_work_orders(
                *base(spec.work_orders),
                self._pool("items", truths),
                generate.Draws(seed, "work_orders"),
            ),
        )
        ops_draws = generate.Draws(seed, "work_order_operations")
        orders = truths["work_orders"].filter(
            pl.col("WO_NO").is_in(self._pool("work_orders", truths).implode())
        )
        orders = orders.select("_rid", "WO_NO").with_columns(
            _n=generate.operation_counts(orders, spec.operations_per_order, ops_draws),
            _base=pl.lit(0, pl.Int64),
        )
        finish(
            "work_order_operations",
            generate.skeleton_work_order_operations(
                orders, 0, self._pool("work_centers", truths), ops_draws
            ),
        )
        self._assign_initial_scns(frames)
        for name, frame in frames.items():
            entity = ENTITIES[name]
            rows = frame.select(*entity.column_names, "_rid", *badrows.BOOKKEEPING)
            ordinals = spec.n_items, spec.n_work_centers, spec.work_orders, 0
            next_ord = dict(zip(ENTITIES, ordinals, strict=True))[name] + 1
            state = _State(entity, rows, next_rid=rows.height, next_ord=next_ord)
            state.rendered = render_rows(rows, entity, seed, spec.erp_timezone)
            self._states[name] = state
        for name in self._states:
            self.views(name)

    def _assign_initial_scns(self, frames: dict[str, pl.DataFrame]) -> None:
        """Initial load: SCNs in small shared groups; late rows (duplicates, empty keys) unique."""
        total = sum(f.height for f in frames.values())
        groups = max(1, total // 3)
        late_kinds = ["duplicate_key", "empty_key"]
        late_next = SCN_BASE + groups
        for name, loaded in frames.items():
            late = pl.col("_kind").is_in(late_kinds).fill_null(False)
            u = rng.uniform(pl.col("_rid"), rng.stream(self.spec.seed, "scn", name))
            early = pl.lit(SCN_BASE, pl.Int64) + (u * groups).floor().cast(pl.Int64)
            counted = loaded.with_columns(_late=late.cast(pl.Int64).cum_sum())
            frames[name] = counted.with_columns(
                pl.when(late)
                .then(pl.lit(late_next - 1, pl.Int64) + pl.col("_late"))
                .otherwise(early)
                .alias(ROWVERSION)
            ).drop("_late")
            late_next += int(frames[name].select(late.sum()).item())
        self._scn = late_next

    # ------------------------------------------------------------------ mutating

    def _replace(self, state: _State, changed: pl.DataFrame, removed: pl.Series) -> None:
        """Drop rows ``removed`` (row ids), add/replace ``changed``, re-render, mark stale."""
        entity = state.entity
        gone = pl.concat([removed, changed["_rid"]]) if changed.height else removed
        for rid in gone.to_list() if state.raw_lines else ():
            state.raw_lines.pop(rid, None)
        changed = changed.select(state.rows.columns)
        state.rows = pl.concat([state.rows.filter(~pl.col("_rid").is_in(gone.implode())), changed])
        kept = state.rendered.filter(~pl.col("_rid").is_in(gone.implode()))
        if changed.height:
            rendered = render_rows(changed, entity, self.spec.seed, self.spec.erp_timezone)
            kept = pl.concat([kept, rendered])
        state.rendered = kept
        state.views = None

    def _choose(self, state: _State, n: int, *salt: object) -> pl.DataFrame:
        candidates = state.rows.filter(pl.col("_kind").is_null())
        pick = rng.uniform(pl.col("_rid"), rng.stream(self.spec.seed, state.entity.name, *salt))
        return candidates.with_columns(_pick=pick).sort("_pick").head(n).drop("_pick")

    def _refill(self, state: _State, rows: pl.DataFrame, salt: int) -> pl.DataFrame:
        """New values for all columns but key and parents; a new SCN per row."""
        entity = state.entity
        fixed = [*entity.key, *sorted(entity.fk_columns - set(entity.key))]
        keep = [*fixed, "_rid", *badrows.BOOKKEEPING]
        draws = generate.Draws(self.spec.seed, entity.name, salt=salt)
        filled = generate.FILLERS[entity.name](rows.select(keep), draws)
        repaired = pl.col("_kind").is_in(list(VALUE_KINDS)).fill_null(False)
        filled = filled.with_columns(
            pl.when(repaired).then(None).otherwise(pl.col(c)).alias(c) for c in badrows.BOOKKEEPING
        )
        return filled.with_columns(self._take_scns(filled.height))

    def update(self, name: str, n: int, seed: int = 0) -> list[KeyTuple]:
        """Change the values of ``n`` random good rows (key and parents stay); new SCNs."""
        with self._lock:
            state = self._states[name]
            chosen = self._choose(state, n, "update", seed)
            changed = self._refill(state, chosen, rng.stream("update", seed, self._scn))
            self._replace(state, changed, pl.Series([], dtype=pl.Int64))
            return _keys_of(state.entity, changed)

    def delete(self, name: str, n: int, seed: int = 0) -> list[KeyTuple]:
        """Delete ``n`` random good rows (their children, if any, become orphans)."""
        with self._lock:
            state = self._states[name]
            chosen = self._choose(state, n, "delete", seed)
            self._replace(state, state.rows.clear(), chosen["_rid"])
            return _keys_of(state.entity, chosen)

    def insert(self, name: str, n: int, seed: int = 0) -> list[KeyTuple]:
        """Insert ``n`` new good rows; children name existing good parents."""
        with self._lock:
            state = self._states[name]
            fresh = self._generate(state, n, rng.stream("insert", seed, self._scn))
            self._check_parents(name, fresh)
            self._replace(state, fresh, pl.Series([], dtype=pl.Int64))
            return _keys_of(state.entity, fresh)

    def _generate(self, state: _State, n: int, salt: int) -> pl.DataFrame:
        """``n`` new rows with new row ids, keys and SCNs, not yet added."""
        name = state.entity.name
        draws = generate.Draws(self.spec.seed, name, salt=salt)
        rids = pl.Series(range(state.next_rid, state.next_rid + n), dtype=pl.Int64)
        ordinals = pl.Series(range(state.next_ord, state.next_ord + n), dtype=pl.Int64)
        state.next_rid += n
        state.next_ord += n
        truths = self._truths() if state.entity.parents else {}
        if name == "items":
            skeleton = generate.skeleton_items(rids, ordinals)
        elif name == "work_centers":
            skeleton = generate.skeleton_work_centers(rids, ordinals)
        elif name == "work_orders":
            skeleton = generate.skeleton_work_orders(
                rids, ordinals, self._pool("items", truths), draws
            )
        else:
            skeleton = self._new_operations(rids, truths, draws)
        filled = generate.FILLERS[name](skeleton, draws)
        rows = badrows.with_no_bad(filled).with_columns(self._take_scns(n))
        return rows.select(state.rows.columns)

    def _check_parents(self, name: str, rows: pl.DataFrame) -> None:
        for column in sorted(ENTITIES[name].fk_columns):
            if rows[column].null_count():
                raise MutationError(f"{name}: no good parent rows for {column} to refer to")

    def _new_operations(
        self, rids: pl.Series, truths: Mapping[str, pl.DataFrame], draws: generate.Draws
    ) -> pl.DataFrame:
        """Operations appended to random good work orders, after their highest OP_SEQ."""
        frame = pl.DataFrame({"_rid": rids})
        orders = generate.pick_from(frame, self._pool("work_orders", truths), draws, "WO_NO")
        highest = (
            self._states["work_order_operations"]
            .rows.group_by("WO_NO")
            .agg(_top=pl.col("OP_SEQ").max())
        )
        frame = (
            frame.with_columns(orders)
            .join(highest, on="WO_NO", how="left")
            .with_columns(
                OP_SEQ=pl.col("_top").fill_null(0)
                + (pl.int_range(pl.len()).over("WO_NO") + 1).cast(pl.Int64) * 10
            )
            .drop("_top")
        )
        wc = generate.pick_from(frame, self._pool("work_centers", truths), draws, "WC_CODE")
        return frame.with_columns(wc)

    def _matching(self, state: _State, keys: Sequence[Sequence[object]]) -> pl.DataFrame:
        wanted = coerce_keys(state.entity, keys)
        cols = list(wanted.columns)
        with_raw = state.rows.with_columns(raw_key_exprs(state.entity))
        return with_raw.join(wanted.unique(), on=cols, how="semi").drop(cols)

    def insert_rows(self, name: str, rows: Sequence[Mapping[str, object]]) -> list[KeyTuple]:
        """Insert explicit rows (true values); columns not given are generated.

        A child may name a parent that does not exist (yet). A key that exists already is
        refused (MutationError), as the ERP's primary key would.
        """
        with self._lock:
            state = self._states[name]
            entity = state.entity
            given = coerce_rows(entity, rows)
            for key in entity.key:
                if key not in given.columns or given[key].null_count():
                    raise MutationError(f"{name}: every inserted row needs its key {key}")
            new_keys = given.select(list(entity.key))
            existing = state.rows.select(list(entity.key))
            if (
                new_keys.is_duplicated().any()
                or new_keys.join(existing, on=list(entity.key)).height
            ):
                raise MutationError(f"{name}: a key of the inserted rows exists already")
            fresh = self._generate(state, given.height, rng.stream("explicit", self._scn))
            fresh = fresh.with_columns(given[c] for c in given.columns)
            for col in entity.columns:
                if not col.nullable and fresh[col.name].null_count():
                    raise MutationError(f"{name}.{col.name} may not be null")
            self._replace(state, fresh, pl.Series([], dtype=pl.Int64))
            return _keys_of(entity, fresh)

    def update_keys(
        self,
        name: str,
        keys: Sequence[Sequence[object]],
        changes: Mapping[str, object] | None = None,
    ) -> list[KeyTuple]:
        """Update the rows with these raw keys: with ``changes`` (true values), or new values.

        Changing a column that made the row bad repairs it; keys cannot be changed.
        """
        with self._lock:
            state = self._states[name]
            entity = state.entity
            hit = self._matching(state, keys)
            if changes is None:
                changed = self._refill(state, hit, rng.stream("update_keys", self._scn))
            else:
                values = coerce_rows(entity, [changes])
                if set(values.columns) & set(entity.key):
                    raise MutationError(f"{name}: key columns cannot be updated")
                touched = list(values.columns)
                repaired = pl.col("_bad_col").is_in(touched).fill_null(False) & (
                    pl.col("_kind") != "duplicate_key"
                )
                changed = hit.with_columns(
                    pl.lit(values[c][0], values[c].dtype).alias(c) for c in touched
                ).with_columns(
                    pl.when(repaired).then(None).otherwise(pl.col(c)).alias(c)
                    for c in badrows.BOOKKEEPING
                )
                changed = changed.with_columns(self._take_scns(changed.height))
            self._replace(state, changed, pl.Series([], dtype=pl.Int64))
            return _keys_of(entity, changed)

    def delete_keys(self, name: str, keys: Sequence[Sequence[object]]) -> list[KeyTuple]:
        """Delete the rows with these raw keys (all of them, for a duplicated key)."""
        with self._lock:
            state = self._states[name]
            hit = self._matching(state, keys)
            self._replace(state, state.rows.clear(), hit["_rid"])
            return _keys_of(state.entity, hit)
