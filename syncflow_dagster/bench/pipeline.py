"""The end-to-end benchmark: the real Dagster job over real HTTP and a real PostgreSQL.

``make bench`` (``syncflow bench``) starts a throwaway PostgreSQL (durable
settings) for the state, the APISmith emulator with the work orders and the
ScheduleHub emulator, each in its own process, syncs the items once (setup),
then times four runs of ``sync_work_orders_job``, each in a fresh process:

a. initial full sync;  b. full re-sync, nothing changed;
c. incremental sync after 1% of the rows changed;  d. full sync after 1% were deleted;
e. incremental sync after 1% changed and 1% were deleted (deletes found by the
   key comparison every shipped run makes: APISmith's /keys against the state).

After each run, the hub's records are read back over HTTP and compared with the
ERP's ground truth (the same deterministic dataset, generated here too): every
id and data hash, and the data of a sample. Fast and wrong is a failure.

Each scenario also reports the CPU seconds every process used during the run:
SyncFlow's run process, PostgreSQL (all its server processes), the APISmith
emulator and the ScheduleHub emulator (``cpu.py``).
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import psutil

from syncflow_dagster.bench import cpu
from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.paths import ENTITIES_DIR, PROJECT_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import ApiSmithProcess, apismith_process
from syncflow_dagster.testing.postgres import PostgresCluster, postgres_cluster
from syncflow_dagster.testing.reconcile import expected_records, reconcile
from syncflow_dagster.testing.schedulehub import ScheduleHubProcess, schedulehub_process

TARGETS = {"a": 10.0, "b": 3.0, "c": 1.5}
RSS_TARGET_MB = 1536.0
SCENARIOS = {
    "a": "initial full sync",
    "b": "full re-sync, nothing changed",
    "c": "incremental, 1% changed",
    "d": "full sync, 1% deleted",
    "e": "incremental, 1% updated + 1% deleted",
}
ENTITY = "work_orders"
JOB = f"sync_{ENTITY}_job"


@dataclass
class ScenarioResult:
    """The figures of one scenario and its verdicts."""

    key: str
    title: str
    rows: int
    seconds: float
    stage_seconds: dict[str, float]
    metrics: dict[str, int]
    peak_rss_mb: float
    exact: bool
    problems: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds during the run, by process (``cpu.ORDER``)."""

    @property
    def cpu_per_million(self) -> float | None:
        """SyncFlow's own CPU seconds per million rows (None when no row was taken up)."""
        return per_million(self.cpu_seconds.get(cpu.RUN), self.rows)

    @property
    def rows_per_second(self) -> float:
        """Rows taken up by the run per second."""
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def time_ok(self) -> bool | None:
        """Within the time target (None where there is none)."""
        target = TARGETS.get(self.key)
        return None if target is None else self.seconds < target

    @property
    def passed(self) -> bool:
        """Exact, within the time target, within the memory target."""
        return self.exact and self.time_ok is not False and self.peak_rss_mb < RSS_TARGET_MB


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "dagster": dg.__version__,
    }


def per_million(seconds: float | None, rows: int) -> float | None:
    """``seconds`` per million rows (None without seconds or rows)."""
    return None if seconds is None or rows <= 0 else seconds * 1_000_000 / rows


TOKENS = {"APISMITH_TOKEN": "bench-apismith", "SCHEDULEHUB_TOKEN": "bench-schedulehub"}


@dataclass
class Bench:
    """The systems a benchmark runs on, and the environment of its run processes."""

    tmp: Path
    pg: PostgresCluster
    api: ApiSmithProcess
    hub: ScheduleHubProcess
    db_url: str
    env: dict[str, str]

    @property
    def watched(self) -> list[cpu.Watched]:
        """The neighbours whose CPU seconds each run reports."""
        return [
            cpu.Watched("postgresql", cpu.postmaster_pid(self.pg.datadir), tree=True),
            cpu.Watched("apismith", self.api.process.pid, tree=True),
            cpu.Watched("schedulehub", self.hub.process.pid, tree=True),
        ]

    def run(
        self, job: str, partition: str, out_name: str, mode: str | None = None
    ) -> dict[str, Any]:
        """One run of ``job`` in a fresh process (``scenario.py``); its figures."""
        out = self.tmp / out_name
        command = [
            sys.executable,
            "-m",
            "syncflow_dagster.bench.scenario",
            "--job",
            job,
            *(["--mode", mode] if mode else []),
            "--partition",
            partition,
            "--out",
            str(out),
            *(f"--watch={w.spec()}" for w in self.watched),
        ]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        if not out.exists():
            raise RuntimeError(f"scenario {job} {mode or ''} crashed:\n{done.stderr[-4000:]}")
        figures = dict(json.loads(out.read_text()))
        if not figures["success"]:
            failure = [
                line for line in done.stderr.splitlines() if "Error" in line or "error" in line
            ]
            figures["error"] = "\n".join(failure[-10:])
        return figures

    def sync_items(self, partition: str, log: Any) -> None:
        """Setup, not timed: the items, so that the work orders find their parents."""
        setup = self.run("sync_items_job", partition, "items.json", "full")
        if not setup["success"]:
            raise RuntimeError(f"setup: the items run failed: {setup.get('error')}")
        log(
            f"setup: items synced in {setup['seconds']:.2f}s "
            f"({setup['metrics'].get('inserted', 0):,} inserted)"
        )


@contextmanager
def bench_systems(rows: int, **env: str) -> Iterator[Bench]:
    """A durable throwaway PostgreSQL (migrated), both emulators in processes of their own.

    ``env``: more settings for the run processes (e.g. BACKGROUND_CHUNK_ROWS).
    """
    with (
        tempfile.TemporaryDirectory(prefix="syncflow-bench-") as tmp,
        postgres_cluster(durable=True) as pg,
        apismith_process(rows=rows, operations_per_order=0, token=TOKENS["APISMITH_TOKEN"]) as api,
        schedulehub_process(token=TOKENS["SCHEDULEHUB_TOKEN"]) as hub,
    ):
        db_url = pg.create_database("syncflow_bench")
        StateStore(db_url).migrate()
        home = Path(tmp) / "dagster"
        home.mkdir()
        # The local instance's configuration, as `make demo` uses it (no telemetry).
        shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
        run_env = {
            **os.environ,
            **TOKENS,
            "APISMITH_URL": api.url,
            "SCHEDULEHUB_URL": hub.url,
            "DATABASE_URL": db_url,
            "DAGSTER_HOME": str(home),
            "DATA_DIR": tmp,
            **env,
        }
        yield Bench(Path(tmp), pg, api, hub, db_url, run_env)


def required_fields(hub: ScheduleHubClient, catalog: Any) -> dict[str, set[str]]:
    """Each entity's fields the hub requires (for the expected records)."""
    entities = hub.entities()
    return {
        c.name: {n for n, f in entities[c.target.entity].fields.items() if f.required}
        for c in catalog
    }


def _mutate(url: str, token: str, action: str, n: int, seed: int) -> list[list[Any]]:
    response = httpx.post(
        f"{url}/admin/entities/{ENTITY}/{action}",
        json={"n": n, "seed": seed},
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    response.raise_for_status()
    return list(response.json()["keys"])


def run_benchmark(rows: int, log: Any = print) -> list[ScenarioResult]:
    """Run the five scenarios on ``rows`` work orders; return their figures."""
    settings = load_settings()
    catalog = load_catalog(ENTITIES_DIR)
    tz = settings.erp_timezone
    partition = nightly_partitions(
        tz, settings.background_sync_window_start
    ).get_last_partition_key()
    assert partition is not None
    spec = DatasetSpec(work_orders=rows, operations_per_order=0, erp_timezone=tz)
    results: list[ScenarioResult] = []
    with bench_systems(rows) as bench:
        log(f"generating the same ERP here for the exactness checks ({rows:,} work orders)")
        dataset = ErpDataset(spec)
        hub = ScheduleHubClient(bench.hub.url, TOKENS["SCHEDULEHUB_TOKEN"])
        required = required_fields(hub, catalog)
        bench.sync_items(partition, log)
        token = TOKENS["APISMITH_TOKEN"]
        for key in ("a", "b", "c", "d", "e"):
            if key in ("c", "e"):
                seed = 101 if key == "c" else 103
                changed = _mutate(bench.api.url, token, "update", rows // 100, seed)
                assert len(dataset.update(ENTITY, rows // 100, seed=seed)) == len(changed)
            if key in ("d", "e"):
                seed = 102 if key == "d" else 104
                gone = _mutate(bench.api.url, token, "delete", rows // 100, seed)
                assert len(dataset.delete(ENTITY, rows // 100, seed=seed)) == len(gone)
            mode = "incremental" if key in ("c", "e") else "full"
            figures = bench.run(JOB, partition, f"{key}.json", mode)
            expected = expected_records(dataset, catalog, tz, required)
            check = reconcile(hub, catalog, expected, entities=[ENTITY, "items"], sample=5000)
            problems = ([] if figures["success"] else ["the run failed"]) + check.problems
            metrics = figures["metrics"]
            result = ScenarioResult(
                key=key,
                title=SCENARIOS[key],
                rows=metrics.get("fetched", 0) + metrics.get("deleted", 0),
                seconds=figures["seconds"],
                stage_seconds=figures["stage_seconds"],
                metrics=metrics,
                peak_rss_mb=figures["peak_rss_mb"],
                exact=not problems,
                problems=problems,
                cpu_seconds=figures["cpu_seconds"],
            )
            results.append(result)
            log(format_result(result))
        hub.close()
    return results


def format_result(r: ScenarioResult) -> str:
    """One scenario as a few lines of text with its verdicts."""
    target = TARGETS.get(r.key)
    verdict = "PASS" if r.passed else "FAIL"
    goal = f"target < {target:g} s" if target else "no time target"
    stages = ", ".join(f"{k} {v:.2f}" for k, v in r.stage_seconds.items())
    lines = [
        f"({r.key}) {r.title}: {r.seconds:.2f} s ({goal}), {r.rows_per_second:,.0f} rows/s, "
        f"peak RSS {r.peak_rss_mb:,.0f} MB (< {RSS_TARGET_MB:,.0f}), "
        f"exact: {'yes' if r.exact else 'NO'} -> {verdict}",
        f"    stages (s): {stages}",
        "    "
        + ", ".join(
            f"{k} {r.metrics.get(k, 0):,}"
            for k in (
                "fetched",
                "inserted",
                "updated",
                "deleted",
                "unchanged",
                "dead_lettered",
                "pending_children",
            )
        ),
    ]
    lines.append("    " + format_cpu(r.cpu_seconds, r.rows))
    lines += [f"    problem: {p}" for p in r.problems]
    return "\n".join(lines)


def format_cpu(seconds: dict[str, float], rows: int) -> str:
    """CPU seconds by process, and SyncFlow's per million rows, as one line."""
    per = per_million(seconds.get(cpu.RUN), rows)
    own = f"; SyncFlow {per:.2f} core-s per 1M rows" if per is not None else ""
    return "CPU (core-s): " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()) + own


def write_results(results: list[ScenarioResult], rows: int, path: Path) -> dict[str, Any]:
    """The JSON result file."""
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"make bench  (syncflow bench --rows {rows})",
        "machine": machine(),
        "rows": rows,
        "scenarios": [
            {
                **asdict(r),
                "rows_per_second": r.rows_per_second,
                "cpu_seconds_per_million_rows": r.cpu_per_million,
                "passed": r.passed,
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return doc


START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def results_table(doc: dict[str, Any]) -> str:
    """The results as the markdown that docs/BENCHMARKS.md carries between its markers."""
    m = doc["machine"]
    lines = [
        START,
        f"Latest run: {doc['date']}, `{doc['command']}`, {doc['rows']:,} work orders.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, "
        f"polars {m['polars']}, dagster {m['dagster']}.",
        "",
        "| scenario | run wall time | target | rows/s | peak RSS | exact | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in doc["scenarios"]:
        target = TARGETS.get(s["key"])
        lines.append(
            f"| ({s['key']}) {s['title']} | {s['seconds']:.2f} s | "
            f"{f'< {target:g} s' if target else '—'} | {s['rows_per_second']:,.0f} | "
            f"{s['peak_rss_mb']:,.0f} MB | {'yes' if s['exact'] else 'no'} | "
            f"{'PASS' if s['passed'] else 'FAIL'} |"
        )
    lines += [
        "",
        "Time per stage (seconds, inside the run):",
        "",
        "| scenario | " + " | ".join(doc["scenarios"][0]["stage_seconds"]) + " |",
        "|---|" + "---|" * len(doc["scenarios"][0]["stage_seconds"]),
    ]
    for s in doc["scenarios"]:
        lines.append(
            f"| ({s['key']}) | "
            + " | ".join(f"{v:.2f}" for v in s["stage_seconds"].values())
            + " |"
        )
    lines += ["", *cpu_table(doc["scenarios"], "scenario")]
    lines.append(END)
    return "\n".join(lines)


def cpu_table(rows: list[dict[str, Any]], first: str) -> list[str]:
    """CPU seconds by process during each run (markdown), with SyncFlow's per million rows.

    ``rows``: dicts with ``label`` (or ``key``), ``seconds``, ``rows`` and ``cpu_seconds``.
    """
    names = list(cpu.ORDER)
    lines = [
        "CPU seconds of each process during the run (core-seconds; 2 cores give at most "
        "2 per second of wall time):",
        "",
        f"| {first} | wall | SyncFlow run | PostgreSQL | APISmith | ScheduleHub | all four "
        "| SyncFlow per 1M rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spent = r.get("cpu_seconds") or {}
        label = r.get("label") or f"({r['key']})"
        per = per_million(spent.get(cpu.RUN), r["rows"])
        cells = [f"{spent[n]:.2f}" if n in spent else "—" for n in names]
        lines.append(
            f"| {label} | {r['seconds']:.2f} s | "
            + " | ".join(cells)
            + f" | {sum(spent.values()):.2f} | "
            + (f"{per:.2f}" if per is not None else "—")
            + " |"
        )
    return lines


def update_docs(doc: dict[str, Any], path: Path) -> None:
    """Replace the results between the markers of docs/BENCHMARKS.md."""
    replace_between(path, START, END, results_table(doc))


def replace_between(path: Path, start: str, end: str, block: str) -> None:
    """Put ``block`` (which begins with ``start`` and ends with ``end``) in place of the old one.

    A file without the markers gets the block at its end.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + block + tail)


def elapsed(started: float) -> str:
    """Seconds since ``started`` as text."""
    return f"{time.monotonic() - started:.0f}s"
