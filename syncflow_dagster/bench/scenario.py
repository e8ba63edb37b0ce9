r"""One benchmark scenario: one real Dagster run of a sync job, in a process of its own.

    python -m syncflow_dagster.bench.scenario --job sync_work_orders_job --mode full \\
        --partition 2026-11-25 --out result.json [--watch postgresql=PID:tree ...]

Settings come from the environment (APISMITH_URL, SCHEDULEHUB_URL, DATABASE_URL,
the tokens, DAGSTER_HOME, BACKGROUND_*), as for any run. The clock covers
``execute_in_process`` only (the run, its ops, its IO manager and its event
writes), not the imports; the peak RSS is the whole process's. The CPU seconds
cover the same interval: this process's, and each ``--watch``ed process's
(PostgreSQL, the emulators; see ``cpu.py``). Without ``--mode`` the job runs
without run config (``sync_<entity>_background_job``: one night, chunk by chunk).
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from syncflow_dagster.bench import cpu
from syncflow_dagster.edges.lean_http import bearer_client
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.settings import load_settings


def _track_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.step_materialization_data.materialization
            return {k: v.value for k, v in mat.metadata.items()}
    return {}


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM).

    Not ``ru_maxrss``: that keeps the high-water mark of the process image
    before ``exec``, i.e. of the parent that forked it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dg.op
def _noop() -> None:
    """Does nothing."""


@dg.job
def _warm_up_job() -> None:
    """Does nothing, on a throwaway instance."""
    _noop()


def warm_up(instance: dg.DagsterInstance) -> None:
    """Import what a process's first run would import lazily.

    Dagster's executor and the instance's compute log manager, the response
    model, the codec sockets use for host names. The clock covers the run,
    not the imports; without this, the first run of a fresh process pays
    ~0.2 s of module loading (compiled from source: no bytecode is cached
    here) that no later run pays.
    """
    _warm_up_job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    _ = instance.compute_log_manager
    bearer_client("http://127.0.0.1", "", 1.0, 1).close()
    httpx.Response(200, headers={"x": "y"}, content=b"{}").text  # noqa: B018
    "localhost".encode("idna")


def run_scenario(
    job: str, mode: str | None, partition: str, watched: list[cpu.Watched] | None = None
) -> dict[str, Any]:
    """Run the job once; its wall time, stage times, batch metrics, peak RSS and CPU seconds."""
    instance = dg.DagsterInstance.get()
    warm_up(instance)
    defs = build_definitions(load_settings())
    job_def = defs.get_job_def(job)
    config = {"ops": {"fetch": {"config": {"mode": mode}}}} if mode else None
    before = cpu.snapshot(watched or [])
    started = time.perf_counter()
    result = job_def.execute_in_process(
        run_config=config, instance=instance, partition_key=partition, raise_on_error=False
    )
    seconds = time.perf_counter() - started
    cpu_seconds = cpu.spent(before, cpu.snapshot(watched or []))
    meta = _track_metadata(result)
    stage_seconds = meta.pop("stage_seconds", {})
    return {
        "job": job,
        "mode": mode,
        "success": result.success,
        "run_id": result.run_id,
        "seconds": seconds,
        "stage_seconds": stage_seconds,
        "metrics": {k: v for k, v in meta.items() if isinstance(v, int)},
        "metadata": {
            k: v for k, v in meta.items() if isinstance(v, int | float | str | list | dict)
        },
        "peak_rss_mb": peak_rss_mb(),
        "cpu_seconds": cpu_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one scenario and write its figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m syncflow_dagster.bench.scenario")
    parser.add_argument("--job", required=True)
    parser.add_argument("--mode", choices=["incremental", "full"], default=None)
    parser.add_argument("--partition", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="NAME=PID[:tree]",
        help="a process whose CPU seconds during the run to report (:tree with its children)",
    )
    args = parser.parse_args(argv)
    watched = [cpu.Watched.parse(spec) for spec in args.watch]
    figures = run_scenario(args.job, args.mode, args.partition, watched)
    args.out.write_text(json.dumps(figures, indent=2))
    return 0 if figures["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
