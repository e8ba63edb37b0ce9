"""The background-sync benchmark: a big table loaded night by night, in chunks, by real runs.

``syncflow bench --background --rows 7000000`` starts the same systems as the
default benchmark (a durable throwaway PostgreSQL for the state, the APISmith
emulator with the work orders and the ScheduleHub emulator, each in its own
process), syncs the items once (setup), and creates the work orders'
background sync: a nightly budget (1,000,000 rows: "7M rows / 7 days"), in a
window that is open while the benchmark runs (from an hour ago, twelve hours
long, in the ERP's zone). Then it runs ``sync_work_orders_background_job``
once per night, each a real Dagster run in a fresh process (``scenario.py``),
each on a partition key of its own (the night), until the sync is done.

Per night: the run's wall time, rows, rows/s, the time of each chunk, the run
process's peak RSS (it must stay within the same 1.5 GB as the 1M-row runs,
however many rows the state already holds) and the CPU seconds of each
process. At the end the hub's records are compared with the ERP's ground
truth: every id and data hash, and the data of a sample.
"""

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from syncflow_dagster.background.schedules import (
    BackgroundDefaults,
    create_schedule,
    get_schedule,
    update_schedule,
)
from syncflow_dagster.bench import cpu
from syncflow_dagster.bench.pipeline import (
    ENTITY,
    RSS_TARGET_MB,
    TOKENS,
    Bench,
    bench_systems,
    cpu_table,
    format_cpu,
    machine,
    per_million,
    replace_between,
    required_fields,
)
from syncflow_dagster.config.loader import EntityCatalog, load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.orchestration.factories.background import background_job_name
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.reconcile import (
    Reconciliation,
    compare_with_hub,
    expected_records,
    read_hub,
)

JOB = background_job_name(ENTITY)
ROWS_PER_NIGHT = 1_000_000
"""The nightly budget: 7M rows in 7 nights."""


@dataclass
class NightFigures:
    """One night: one background run."""

    night: str
    status: str
    reason: str
    seconds: float
    rows: int
    chunks: int
    chunk_seconds: list[float]
    peak_rss_mb: float
    cpu_seconds: dict[str, float]
    rows_before: int
    """Rows the sync had done (and the state held) when the night began."""
    rows_done: int
    nights_used: int
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows taken up per second of the run's wall time."""
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def outside_chunks(self) -> float:
        """The run's seconds outside its chunks: Dagster, the lease, the batch, the row."""
        return max(0.0, self.seconds - sum(self.chunk_seconds))


@dataclass
class BackgroundResult:
    """The whole load, night by night, and its verdicts."""

    rows: int
    chunk_rows: int
    budget: int
    rows_total: int
    nights: list[NightFigures]
    status: str
    exact: bool
    """The hub holds exactly what the ERP says."""
    problems: list[str] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per entity: the hub holds, the ERP says."""
    compared: dict[str, int] = field(default_factory=dict)
    """Per entity: records whose data (not only the hash) was compared."""

    @property
    def expected_nights(self) -> int:
        """Nights the budget allows: the last one ends when a fetch reaches the end of the data."""
        return max(1, math.ceil(self.rows_total / self.budget))

    @property
    def seconds(self) -> float:
        """The runs' wall time, added up."""
        return sum(n.seconds for n in self.nights)

    @property
    def rows_synced(self) -> int:
        """Rows the runs took up."""
        return sum(n.rows for n in self.nights)

    @property
    def rows_per_second(self) -> float:
        """Rows per second of run time, over every night."""
        return self.rows_synced / self.seconds if self.seconds else 0.0

    @property
    def peak_rss_mb(self) -> float:
        """The highest peak RSS of any night's run process."""
        return max((n.peak_rss_mb for n in self.nights), default=0.0)

    @property
    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds by process, over every night."""
        total: dict[str, float] = {}
        for n in self.nights:
            total = cpu.add(total, n.cpu_seconds)
        return total

    @property
    def chunk_seconds(self) -> list[float]:
        """Every chunk's time, night after night."""
        return [t for n in self.nights for t in n.chunk_seconds]

    @property
    def passed(self) -> bool:
        """Exact, done in the nights the budget allows, every run within the memory target."""
        return (
            self.exact
            and not self.problems
            and self.status == "done"
            and len(self.nights) == self.expected_nights
            and self.peak_rss_mb < RSS_TARGET_MB
        )


def open_window(now: datetime, timezone: str, length_hours: int = 12) -> tuple[str, str]:
    """A window (``HH:MM``, ``HH:MM``) that opened an hour before ``now`` and lasts a while."""
    opens = now.astimezone(ZoneInfo(timezone)) - timedelta(hours=1)
    return opens.strftime("%H:%M"), (opens + timedelta(hours=length_hours)).strftime("%H:%M")


def run_background_benchmark(
    rows: int,
    *,
    chunk_rows: int | None = None,
    rows_per_night: int | None = ROWS_PER_NIGHT,
    target_nights: int | None = None,
    sample: int = 5000,
    log: Any = print,
) -> BackgroundResult:
    """Load ``rows`` work orders night by night through background runs; their figures.

    Args:
        rows: work orders in the ERP.
        chunk_rows: BACKGROUND_CHUNK_ROWS of the runs (default: the setting).
        rows_per_night: the nightly budget of the background sync.
        target_nights: instead of a budget, the nights to spread the table over.
        sample: records whose data (not only the hash) is compared at the end.
        log: where progress lines go.
    """
    settings = load_settings()
    chunk = chunk_rows or settings.background_chunk_rows
    tz = settings.erp_timezone
    catalog = load_catalog(ENTITIES_DIR)
    nights_wanted = (target_nights or math.ceil(rows / (rows_per_night or rows))) + 2
    partitions = nightly_partitions(tz, settings.background_sync_window_start)
    keys = list(partitions.get_partition_keys())[-nights_wanted:]
    env = {"BACKGROUND_CHUNK_ROWS": str(chunk)}
    if rows_per_night:
        env["BACKGROUND_ROWS_PER_NIGHT"] = str(rows_per_night)
    with bench_systems(rows, **env) as bench:
        store = StateStore(bench.db_url)
        bench.sync_items(keys[-1], log)
        defaults = BackgroundDefaults.from_settings(load_settings(background_chunk_rows=chunk))
        start, end = open_window(datetime.now(UTC), tz)
        values: dict[str, Any] = {
            "window_start": start,
            "window_end": end,
            "timezone": tz,
            "rows_per_night": None if target_nights else rows_per_night,
            "target_nights": target_nights,
        }
        if store.get_background(ENTITY) is None:
            create_schedule(store, catalog, defaults, ENTITY, **values)
        else:
            update_schedule(store, catalog, defaults, ENTITY, **values)
        budget = f"{target_nights} nights" if target_nights else f"{rows_per_night:,} rows a night"
        log(
            f"background sync of {ENTITY}: {budget}, chunks of {chunk:,} rows, "
            f"window {start}–{end} {tz}"
        )
        nights = _nights(bench, store, catalog, defaults, keys, log)
        schedule = get_schedule(store, catalog, defaults, ENTITY)
        row = schedule.row
        problems = [f"night {n.night}: the run failed" for n in nights if n.status == "failed"]
        result = BackgroundResult(
            rows=rows,
            chunk_rows=chunk,
            budget=schedule.budget,
            rows_total=row.rows_total or 0,
            nights=nights,
            status=row.status,
            exact=False,
            problems=problems,
        )
        result.problems += _night_problems(result)
        # The ERP is not needed any more: its memory goes to the check.
        bench.api.process.terminate()
        bench.api.process.wait(timeout=30)
        log(
            "the exactness check: the hub's records read back, then the same ERP "
            f"generated here ({rows:,} work orders)"
        )
        check, result.compared = _check(bench, catalog, tz, rows, sample)
        result.counts = check.counts
        result.problems += check.problems
        result.exact = check.ok
        store.dispose()
    log(format_background(result))
    return result


def _nights(
    bench: Bench,
    store: StateStore,
    catalog: EntityCatalog,
    defaults: BackgroundDefaults,
    keys: list[str],
    log: Any,
) -> list[NightFigures]:
    """One background run per night until the sync is done (or the nights run out)."""
    nights: list[NightFigures] = []
    for night in keys:
        before = get_schedule(store, catalog, defaults, ENTITY).row
        figures = bench.run(JOB, night, f"night-{night}.json")
        row = get_schedule(store, catalog, defaults, ENTITY).row
        meta = figures.get("metadata", {})
        batch_id = meta.get("batch_id")
        metrics = {}
        if isinstance(batch_id, int):
            batch = store.get_batch(batch_id)
            metrics = {m: int(batch.get(m) or 0) for m in METRIC_NAMES if m != "duration_ms"}
        n = NightFigures(
            night=night,
            status=str(meta.get("status", "failed" if not figures["success"] else "?")),
            reason=str(meta.get("reason", figures.get("error", ""))),
            seconds=figures["seconds"],
            rows=int(meta.get("rows_this_run", 0)),
            chunks=int(meta.get("chunks", 0)),
            chunk_seconds=[float(t) for t in meta.get("seconds_per_chunk", [])],
            peak_rss_mb=figures["peak_rss_mb"],
            cpu_seconds=figures["cpu_seconds"],
            rows_before=before.rows_done if before.status != "pending" else 0,
            rows_done=row.rows_done,
            nights_used=row.nights_used,
            metrics=metrics,
        )
        nights.append(n)
        log(format_night(n, row.rows_total))
        if not figures["success"] or row.status in ("done", "failed"):
            break
    return nights


def _night_problems(r: BackgroundResult) -> list[str]:
    """What the nights did against what the budget says they should have done."""
    problems = []
    if r.status != "done":
        problems.append(f"the sync is {r.status} after {len(r.nights)} nights, not done")
    if len(r.nights) != r.expected_nights:
        problems.append(
            f"{len(r.nights)} nights, where {r.rows_total:,} rows at {r.budget:,} a night "
            f"take {r.expected_nights}"
        )
    if r.rows_synced != r.rows_total:
        problems.append(f"the nights took up {r.rows_synced:,} rows of {r.rows_total:,}")
    for n in r.nights[:-1]:
        if n.rows != r.budget or n.status != "paused":
            problems.append(f"night {n.night}: {n.status} after {n.rows:,} rows ({n.reason})")
    if r.nights and r.nights[-1].nights_used != len(r.nights):
        problems.append(f"nights_used is {r.nights[-1].nights_used}, {len(r.nights)} nights ran")
    return problems


def _check(
    bench: Bench, catalog: EntityCatalog, tz: str, rows: int, sample: int
) -> tuple[Reconciliation, dict[str, int]]:
    """The hub against the ERP's ground truth: every id and hash, the data of a sample.

    The hub's records are read first (ids and hashes as columns, whole records
    only for the sample) and the hub stopped; only then is the ERP generated
    here, so that the hub's and the ERP's millions of rows are never in memory
    at once. The expectation is computed a slice of keys at a time, keeping
    the ingest lines of the sampled records only.
    """
    spec = DatasetSpec(work_orders=rows, operations_per_order=0, erp_timezone=tz)
    sizes = {ENTITY: rows, "items": spec.n_items}
    hub = ScheduleHubClient(bench.hub.url, TOKENS["SCHEDULEHUB_TOKEN"])
    try:
        required = required_fields(hub, catalog)
        held = {
            name: read_hub(hub, catalog[name].target.entity, sample / max(1, size))
            for name, size in sizes.items()
        }
    finally:
        hub.close()
    bench.hub.process.terminate()
    bench.hub.process.wait(timeout=30)
    dataset = ErpDataset(spec)
    truths = {cfg.source.entity: dataset.ground_truth(cfg.source.entity) for cfg in catalog}
    del dataset  # its rendered pages and views: as big again as the truths
    sampled = {bk for have in held.values() for bk in have.sampled}
    expected = expected_in_slices(
        truths, catalog, tz, required, sampled, slices=max(2, rows // 500_000)
    )
    result = Reconciliation()
    compared = {
        name: compare_with_hub(name, expected[name], have, result) for name, have in held.items()
    }
    return result, compared


class _Truths:
    """What ``expected_records`` reads of an ``ErpDataset``: the ground truth, by entity."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        self.frames = frames

    def ground_truth(self, name: str) -> pl.DataFrame:
        return self.frames[name]


def expected_in_slices(
    truths: dict[str, pl.DataFrame],
    catalog: EntityCatalog,
    tz: str,
    required: dict[str, set[str]],
    lines_of: set[str],
    slices: int,
) -> dict[str, pl.DataFrame]:
    """``expected_records``, the work orders a slice of keys at a time.

    A key's rows (duplicates too) all fall in one slice, so that each slice
    keeps the same latest version of it; the parents are whole in every slice.
    The ingest line (``_line``) is kept only for the records in ``lines_of``.
    """
    cfg = catalog[ENTITY]
    work_orders = truths[cfg.source.entity]
    slice_of = pl.concat_str(list(cfg.source.key), ignore_nulls=True).hash(seed=7) % slices
    keep_line = pl.when(pl.col("bk_hash").is_in(list(lines_of))).then(pl.col("_line"))
    parts: list[dict[str, pl.DataFrame]] = []
    for i in range(slices):
        frames = {**truths, cfg.source.entity: work_orders.filter(slice_of == i)}
        part = expected_records(cast(ErpDataset, _Truths(frames)), catalog, tz, required)
        parts.append({name: frame.with_columns(keep_line) for name, frame in part.items()})
    expected = dict(parts[0])
    expected[ENTITY] = pl.concat([part[ENTITY] for part in parts])
    return expected


def _spread(values: list[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    return f"{ordered[0]:.2f} / {median:.2f} / {ordered[-1]:.2f}"


def _first(values: list[float]) -> str:
    return f"{values[0]:.2f}" if values else "—"


def format_night(n: NightFigures, rows_total: int | None) -> str:
    """One night as a few lines of text."""
    total = f"{rows_total:,}" if rows_total else "?"
    chunks = ", ".join(f"{t:.2f}" for t in n.chunk_seconds)
    return "\n".join(
        [
            f"night {n.nights_used} ({n.night}): {n.status}, {n.rows:,} rows in {n.seconds:.2f} s "
            f"({n.rows_per_second:,.0f} rows/s), {n.chunks} chunks "
            f"({n.outside_chunks:.2f} s outside them), peak RSS "
            f"{n.peak_rss_mb:,.0f} MB (state held {n.rows_before:,} rows before); "
            f"done {n.rows_done:,} of {total}",
            f"    chunks (s): {chunks}",
            f"    {n.reason}",
            "    " + format_cpu(n.cpu_seconds, n.rows),
        ]
    )


def format_background(r: BackgroundResult) -> str:
    """The whole load, with its verdict."""
    verdict = "PASS" if r.passed else "FAIL"
    lines = [
        f"\nbackground sync of {r.rows_total:,} rows ({r.rows:,} work orders asked): "
        f"{len(r.nights)} nights (the budget of {r.budget:,} a night allows "
        f"{r.expected_nights}), {r.status}; {r.rows_synced:,} rows in {r.seconds:.1f} s of runs, "
        f"{r.rows_per_second:,.0f} rows/s; chunks of {r.chunk_rows:,}: "
        f"min / median / max {_spread(r.chunk_seconds)} s; peak RSS {r.peak_rss_mb:,.0f} MB "
        f"(< {RSS_TARGET_MB:,.0f}); exact: {'yes' if r.exact else 'NO'} -> {verdict}",
        "    " + format_cpu(r.cpu_seconds, r.rows_synced),
    ]
    lines += [f"    problem: {p}" for p in r.problems]
    return "\n".join(lines)


def write_background_results(r: BackgroundResult, command: str, path: Path) -> dict[str, Any]:
    """The JSON result file."""
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "rows": r.rows,
        "rows_total": r.rows_total,
        "chunk_rows": r.chunk_rows,
        "budget": r.budget,
        "expected_nights": r.expected_nights,
        "status": r.status,
        "seconds": r.seconds,
        "rows_synced": r.rows_synced,
        "rows_per_second": r.rows_per_second,
        "peak_rss_mb": r.peak_rss_mb,
        "cpu_seconds": r.cpu_seconds,
        "cpu_seconds_per_million_rows": per_million(r.cpu_seconds.get(cpu.RUN), r.rows_synced),
        "exact": r.exact,
        "problems": r.problems,
        "counts": r.counts,
        "compared": r.compared,
        "passed": r.passed,
        "nights": [
            {**asdict(n), "rows_per_second": n.rows_per_second, "outside_chunks": n.outside_chunks}
            for n in r.nights
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return doc


START, END = "<!-- bench:background:start -->", "<!-- bench:background:end -->"


def background_table(doc: dict[str, Any]) -> str:
    """The results as the markdown docs/BENCHMARKS.md carries between its background markers."""
    m = doc["machine"]
    chunks = [t for n in doc["nights"] for t in n["chunk_seconds"]]
    firsts = [n["chunk_seconds"][0] for n in doc["nights"] if n["chunk_seconds"]]
    others = [t for n in doc["nights"] for t in n["chunk_seconds"][1:]]
    lines = [
        START,
        f"Latest run: {doc['date']}, `{doc['command']}`: {doc['rows_total']:,} work-order rows "
        f"in the ERP, a budget of {doc['budget']:,} rows a night, chunks of "
        f"{doc['chunk_rows']:,} rows.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, "
        f"polars {m['polars']}, dagster {m['dagster']}.",
        "",
        "| night | status | rows | run wall time | rows/s | chunks | first chunk (keys "
        "compared) | other chunks: min / median / max | run outside chunks | peak RSS "
        "| state rows before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in doc["nights"]:
        lines.append(
            f"| {n['nights_used']} ({n['night']}) | {n['status']} | {n['rows']:,} | "
            f"{n['seconds']:.2f} s | {n['rows_per_second']:,.0f} | {n['chunks']} | "
            f"{_first(n['chunk_seconds'])} | {_spread(n['chunk_seconds'][1:])} | "
            f"{n['outside_chunks']:.2f} s | "
            f"{n['peak_rss_mb']:,.0f} MB | "
            f"{n['rows_before']:,} |"
        )
    lines.append(
        f"| all {len(doc['nights'])} | {doc['status']} | {doc['rows_synced']:,} | "
        f"{doc['seconds']:.2f} s | {doc['rows_per_second']:,.0f} | {len(chunks)} | "
        f"{_spread(firsts)} | {_spread(others)} | "
        f"{sum(n['outside_chunks'] for n in doc['nights']):.2f} s | "
        f"{doc['peak_rss_mb']:,.0f} MB | |"
    )
    verdict = "PASS" if doc["passed"] else "FAIL"
    memory_ok = doc["peak_rss_mb"] < RSS_TARGET_MB
    lines += [
        "",
        f"Nights: {len(doc['nights'])} (the budget allows {doc['expected_nights']}); "
        f"peak RSS < {RSS_TARGET_MB:,.0f} MB: {'yes' if memory_ok else 'NO'}; "
        f"hub equals the ERP: {'yes' if doc['exact'] else 'NO'} (every id and data hash; "
        f"the data of {sum(doc['compared'].values()):,} records) -> {verdict}.",
        *[f"Problem: {p}" for p in doc["problems"]],
        "",
        *cpu_table(
            [{**n, "label": f"night {n['nights_used']}"} for n in doc["nights"]]
            + [
                {
                    "label": "all nights",
                    "seconds": doc["seconds"],
                    "rows": doc["rows_synced"],
                    "cpu_seconds": doc["cpu_seconds"],
                }
            ],
            "night",
        ),
        END,
    ]
    return "\n".join(lines)


def update_background_docs(doc: dict[str, Any], path: Path) -> None:
    """Replace the background figures between their markers of docs/BENCHMARKS.md."""
    replace_between(path, START, END, background_table(doc))
