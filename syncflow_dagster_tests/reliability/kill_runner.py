"""Run one sync job in a process of its own and say where it is, so that a test can kill it there.

    python -m syncflow_dagster_tests.reliability.kill_runner PLAN_JSON

``PLAN_JSON`` holds ``job``, ``run_config``, ``settings`` (no secrets: the
tokens and ``DATABASE_URL`` come from the environment, as in production),
``progress`` (a file the runner appends ``<time> <point> <event>`` lines to)
and ``hold`` (where to hold still until killed, or null).

Nothing of SyncFlow's logic changes. The runner wraps, in this process only:

* each op's pipeline step (``fetch_step`` … ``track_step`` as the ops call
  them), to write ``<stage> begin`` / ``<stage> end``;
* the PostgreSQL state writes (``pg_state.upsert`` / ``delete``), to write
  ``state_write begin`` / ``end`` — these run inside the write's transaction;
* with ``hold`` set, one of those points sleeps until the test kills the
  process (``<point> hold`` is written first): a pure stage before or after
  its work, a state write after its rows went in but before its commit, the
  track step before closing the batch, the reconciliation before it marks the
  unclean batches reconciled.

``flush_rows`` / ``min_flush_rows`` (optional, in the plan) make the state writer write
every few batches, as it does on production-sized waves (every 100,000
acknowledged rows), so that kills during the ingest also land between and
inside its writes.
"""

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import orjson

from syncflow_dagster.edges.state import StateStore, pg_state
from syncflow_dagster.orchestration import ops
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.pipeline import ingest, track
from syncflow_dagster.pipeline.state_writer import StateWriter
from syncflow_dagster.settings import load_settings

HOLD_SECONDS = 600.0
PURE_STAGES = ("normalize", "validate", "map", "identity", "delta", "resolve")
STEPS = {
    "fetch": "fetch_step",
    "normalize": "normalize_step",
    "validate": "validate_step",
    "map": "map_step",
    "identity": "identity_step",
    "delta": "delta_step",
    "resolve": "resolve_step",
    "ingest": "ingest_step",
    "track": "track_step",
}


class Progress:
    """Appends one line per event to the progress file (unbuffered, O_APPEND)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.stage = "startup"

    def say(self, point: str, event: str) -> None:
        """Record that the run reached ``point`` (``begin``, ``end``, ``hold``)."""
        os.write(self._fd, f"{time.time():.6f} {point} {event}\n".encode())


def _hold(progress: Progress, point: str) -> None:
    progress.say(point, "hold")
    time.sleep(HOLD_SECONDS)
    raise AssertionError(f"held at {point} for {HOLD_SECONDS} s and nobody killed the run")


def install(progress: Progress, hold: dict[str, Any] | None) -> None:
    """Wrap the steps and the state writes of this process (see the module's docstring)."""
    at = hold.get("at") if hold else None
    where = hold.get("where") if hold else None
    call = int(hold.get("call", 1)) if hold else 1

    def staged(stage: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            progress.stage = stage
            progress.say(stage, "begin")
            if at == stage and where == "before":
                _hold(progress, stage)
            out = real(*args, **kwargs)
            if at == stage and where == "after":
                _hold(progress, stage)
            progress.say(stage, "end")
            return out

        return step

    for stage, name in STEPS.items():
        setattr(ops, name, staged(stage, getattr(ops, name)))

    writes = {"n": 0}

    def writing(real: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            inside = progress.stage == "ingest"
            if inside:
                writes["n"] += 1
                progress.say("state_write", "begin")
            out = real(*args, **kwargs)
            if inside and at == "state_write" and writes["n"] >= call:
                _hold(progress, "state_write")  # rows written, transaction not committed
            if inside:
                progress.say("state_write", "end")
            return out

        return write

    pg_state.upsert = writing(pg_state.upsert)  # type: ignore[method-assign]
    pg_state.delete = writing(pg_state.delete)  # type: ignore[method-assign]

    if at == "track" and where == "middle":
        real_finish = track.finish_batch

        def finish_batch(*args: Any, **kwargs: Any) -> Any:
            _hold(progress, "track")  # letters and children written, batch still running
            return real_finish(*args, **kwargs)

        track.finish_batch = finish_batch  # type: ignore[assignment]

    if at == "fetch_reconcile":
        real_mark = StateStore.mark_reconciled

        def mark_reconciled(self: StateStore, *args: Any, **kwargs: Any) -> Any:
            _hold(progress, "fetch_reconcile")  # state corrected, batches not marked yet
            return real_mark(self, *args, **kwargs)

        StateStore.mark_reconciled = mark_reconciled  # type: ignore[method-assign]


def small_state_writes(flush_rows: int, min_flush_rows: int) -> None:
    """Make the ingest's state writer write every ``flush_rows`` acknowledged rows."""

    @contextmanager
    def state_writer(store: StateStore, entity: str, batch_id: int) -> Iterator[StateWriter]:
        writer = StateWriter(store, entity, batch_id, flush_rows, min_flush_rows)
        try:
            yield writer
        finally:
            writer.close()

    ingest.state_writer = state_writer  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    """Run the job; exit 0 when it succeeded."""
    plan = orjson.loads(argv[0])
    progress = Progress(plan["progress"])
    install(progress, plan.get("hold"))
    if plan.get("flush_rows"):
        small_state_writes(plan["flush_rows"], plan.get("min_flush_rows") or plan["flush_rows"])

    defs = build_definitions(load_settings(**plan["settings"]))
    progress.say("job", "begin")
    with dg.instance_for_test() as instance:
        result = defs.get_job_def(plan["job"]).execute_in_process(
            run_config=plan["run_config"],
            instance=instance,
            partition_key=plan["partition"],
            raise_on_error=False,
        )
    progress.say("job", "end")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
