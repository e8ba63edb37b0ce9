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

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.orchestration.partitions import nightly_partitions
from syncflow_dagster.paths import ENTITIES_DIR, PROJECT_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import apismith_process
from syncflow_dagster.testing.postgres import postgres_cluster
from syncflow_dagster.testing.reconcile import expected_records, reconcile
from syncflow_dagster.testing.schedulehub import schedulehub_process

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


@contextmanager
def _environment(**values: str) -> Iterator[dict[str, str]]:
    yield {**os.environ, **values}


def _run_child(
    env: dict[str, str], mode: str, partition: str, out: Path, job: str = JOB
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "syncflow_dagster.bench.scenario",
        "--job",
        job,
        "--mode",
        mode,
        "--partition",
        partition,
        "--out",
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if not out.exists():
        raise RuntimeError(f"scenario {job} {mode} crashed:\n{done.stderr[-4000:]}")
    figures = dict(json.loads(out.read_text()))
    if not figures["success"]:
        failure = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        figures["error"] = "\n".join(failure[-10:])
    return figures


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
    tokens = {"APISMITH_TOKEN": "bench-apismith", "SCHEDULEHUB_TOKEN": "bench-schedulehub"}
    results: list[ScenarioResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="syncflow-bench-") as tmp,
        postgres_cluster(durable=True) as pg,
        apismith_process(rows=rows, operations_per_order=0, token=tokens["APISMITH_TOKEN"]) as api,
        schedulehub_process(token=tokens["SCHEDULEHUB_TOKEN"]) as hub_proc,
    ):
        db_url = pg.create_database("syncflow_bench")
        StateStore(db_url).migrate()
        home = Path(tmp) / "dagster"
        home.mkdir()
        # The local instance's configuration, as `make demo` uses it (no telemetry).
        shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
        log(f"generating the same ERP here for the exactness checks ({rows:,} work orders)")
        dataset = ErpDataset(spec)
        hub = ScheduleHubClient(hub_proc.url, tokens["SCHEDULEHUB_TOKEN"])
        required = {
            c.name: {n for n, f in hub.entities()[c.target.entity].fields.items() if f.required}
            for c in catalog
        }
        with _environment(
            **tokens,
            APISMITH_URL=api.url,
            SCHEDULEHUB_URL=hub_proc.url,
            DATABASE_URL=db_url,
            DAGSTER_HOME=str(home),
            DATA_DIR=tmp,
        ) as env:
            setup = _run_child(env, "full", partition, Path(tmp) / "items.json", "sync_items_job")
            if not setup["success"]:
                raise RuntimeError(f"setup: the items run failed: {setup.get('error')}")
            log(
                f"setup: items synced in {setup['seconds']:.2f}s "
                f"({setup['metrics'].get('inserted', 0):,} inserted)"
            )
            token = tokens["APISMITH_TOKEN"]
            for key in ("a", "b", "c", "d", "e"):
                if key in ("c", "e"):
                    seed = 101 if key == "c" else 103
                    changed = _mutate(api.url, token, "update", rows // 100, seed)
                    assert len(dataset.update(ENTITY, rows // 100, seed=seed)) == len(changed)
                if key in ("d", "e"):
                    seed = 102 if key == "d" else 104
                    gone = _mutate(api.url, token, "delete", rows // 100, seed)
                    assert len(dataset.delete(ENTITY, rows // 100, seed=seed)) == len(gone)
                mode = "incremental" if key in ("c", "e") else "full"
                figures = _run_child(env, mode, partition, Path(tmp) / f"{key}.json")
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
    lines += [f"    problem: {p}" for p in r.problems]
    return "\n".join(lines)


def write_results(results: list[ScenarioResult], rows: int, path: Path) -> dict[str, Any]:
    """The JSON result file."""
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"make bench  (syncflow bench --rows {rows})",
        "machine": machine(),
        "rows": rows,
        "scenarios": [
            {**asdict(r), "rows_per_second": r.rows_per_second, "passed": r.passed} for r in results
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
    lines.append(END)
    return "\n".join(lines)


def update_docs(doc: dict[str, Any], path: Path) -> None:
    """Replace the results between the markers of docs/BENCHMARKS.md."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + results_table(doc) + tail)


def elapsed(started: float) -> str:
    """Seconds since ``started`` as text."""
    return f"{time.monotonic() - started:.0f}s"
