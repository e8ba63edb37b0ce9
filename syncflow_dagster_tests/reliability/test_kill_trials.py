"""kill -9 at random points of a sync run, the ERP changes, a rerun: the hub equals the ERP.

Each trial, over real PostgreSQL and both emulators over loopback HTTP:

1. items and work orders are synced (in process, clean);
2. the ERP changes — new orders, changed priorities, deleted orders, random
   updates — which the next run sends;
3. ``sync_work_orders_job`` runs in a process of its own
   (:mod:`kill_runner`, which reports its stage) against a slow hub (and, for
   fetch kills, a slow APISmith) and is SIGKILLed at the trial's point;
4. the ERP changes again, on exactly what the killed run may have sent: half
   of the new orders are deleted, half of the changed priorities are reverted,
   half of the deleted orders are inserted again (same values, or new ones),
   plus fresh random inserts, updates and deletes;
5. the job runs again, as shipped (no run config) — the dead run's lease is
   taken over at once (its process is gone) and its batch closed;
6. the hub must equal the ERP: every expected record, with its data, and
   nothing else (``reconcile``), the state one row per hub record, no batch
   left running, no lease left held, no dead letter twice.

Where a trial kills is drawn from its seed (``RELIABILITY_SEED`` · 100 +
trial): the stage aimed at cycles through every stage, a state write, the
reconciliation after an unclean run, and "anywhere in the run"; within it,
the moment (an offset into the stage, or before / after its work) is random.
What the kill actually hit is read from the child's progress and recorded.
"""

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import polars as pl
import pytest

from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster_tests.orchestration.conftest import (
    FAST_RETRIES,
    PARTITION,
    MakeHarness,
    SyncHarness,
)
from syncflow_dagster_tests.reliability.kill_runner import PURE_STAGES
from syncflow_dagster_tests.reliability.results import record

BASE_SEED = int(os.environ.get("RELIABILITY_SEED", "1125"))
AIMS = (
    "fetch",
    "fetch_reconcile",
    *PURE_STAGES,
    "ingest",
    "state_write",
    "track",
    "anywhere",
)
TRIALS = 36
"""Three per aim."""
ALWAYS_ON = (9, 10)
"""Trials that also run in ``make test`` (a kill inside a state write, one in track)."""
SLOW_HUB = FaultPlan.parse("latency=1.0:60")
SLOW_ERP = FaultPlan.parse("latency=1.0:200")
CALM = FaultPlan()
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _trials() -> list[Any]:
    params = []
    for trial in range(TRIALS):
        aim = AIMS[trial % len(AIMS)]
        marks = () if trial in ALWAYS_ON else (pytest.mark.reliability,)
        params.append(pytest.param(trial, aim, marks=marks, id=f"{trial:02d}-{aim}"))
    return params


@dataclass
class Kill:
    """Where a kill landed."""

    hit: str
    offset: float
    state_writes: int


def _good_orders(data: ErpDataset) -> pl.DataFrame:
    """Work orders without a bad value and with a key no other row has."""
    truth = data.ground_truth("work_orders")
    once = truth.filter(pl.col("WO_NO").is_unique())
    return once.filter(pl.col("_bad").is_null())


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """An ERP row's true values, as ``insert_rows`` takes them."""
    return {k: v for k, v in row.items() if not k.startswith("_") and k != "ORA_ROWSCN"}


@dataclass
class Changes:
    """What the ERP changed before the kill, so it can be changed again after it."""

    inserted: list[str]
    priorities: dict[str, int]
    deleted: list[dict[str, Any]]
    counts: dict[str, int]


def changes_before(data: ErpDataset, rng: random.Random, seed: int) -> Changes:
    """New orders, changed priorities, deleted orders, random updates: the killed run sends them."""
    good = _good_orders(data)
    picked = good.sample(rng.randint(60, 160) + rng.randint(20, 60), seed=seed, shuffle=True)
    n_upd = picked.height - rng.randint(20, 60)
    to_update, to_delete = picked.head(n_upd), picked.tail(picked.height - n_upd)
    priorities = dict(zip(to_update["WO_NO"], to_update["PRIORITY"], strict=True))
    data.update_keys("work_orders", [[k] for k in priorities], {"PRIORITY": 990})
    deleted = [_plain(r) for r in to_delete.to_dicts()]
    data.delete_keys("work_orders", [[r["WO_NO"]] for r in deleted])
    inserted = [k[0] for k in data.insert("work_orders", rng.randint(60, 160), seed=seed)]
    updated = data.update("work_orders", rng.randint(10, 40), seed=seed)
    counts = {
        "inserted": len(inserted),
        "priority_changed": len(priorities),
        "deleted": len(deleted),
        "updated": len(updated),
    }
    return Changes([str(k) for k in inserted], priorities, deleted, counts)


def changes_after(data: ErpDataset, rng: random.Random, seed: int, was: Changes) -> dict[str, int]:
    """Delete, revert and re-insert what the killed run may have sent; fresh changes too."""
    present = set(data.ground_truth("work_orders")["WO_NO"])
    doomed = [k for k in rng.sample(was.inserted, len(was.inserted) // 2) if k in present]
    data.delete_keys("work_orders", [[k] for k in doomed])
    reverted = rng.sample(sorted(was.priorities), len(was.priorities) // 2)
    present = set(data.ground_truth("work_orders")["WO_NO"])
    by_value: dict[int, list[str]] = {}
    for key in reverted:
        if key in present:
            by_value.setdefault(was.priorities[key], []).append(key)
    for value, keys in by_value.items():
        data.update_keys("work_orders", [[k] for k in keys], {"PRIORITY": value})
    back = rng.sample(was.deleted, len(was.deleted) // 2)
    same = [r for i, r in enumerate(back) if i % 3]
    renewed = [
        {"WO_NO": r["WO_NO"], "ITEM_NO": r["ITEM_NO"]} for i, r in enumerate(back) if not i % 3
    ]
    for rows in (same, renewed):  # one call per column set: a missing value is generated
        if rows:
            data.insert_rows("work_orders", rows)
    fresh_ins = data.insert("work_orders", rng.randint(5, 30), seed=seed + 1)
    fresh_upd = data.update("work_orders", rng.randint(5, 30), seed=seed + 1)
    fresh_del = data.delete("work_orders", rng.randint(5, 20), seed=seed + 1)
    return {
        "deleted_new": len(doomed),
        "reverted": sum(len(v) for v in by_value.values()),
        "reinserted_same": len(same),
        "reinserted_new_values": len(renewed),
        "inserted": len(fresh_ins),
        "updated": len(fresh_upd),
        "deleted": len(fresh_del),
    }


def _events(progress: Path) -> list[tuple[float, str, str]]:
    if not progress.exists():
        return []
    out = []
    for line in progress.read_text().splitlines():
        at, point, event = line.split()
        out.append((float(at), point, event))
    return out


def _wait_for(
    progress: Path, child: subprocess.Popen[bytes], point: str, event: str, log: Path
) -> float:
    deadline = time.monotonic() + 180
    while True:
        for at, p, e in _events(progress):
            if (p, e) == (point, event):
                return at
        if child.poll() is not None:
            raise AssertionError(
                f"the run ended (exit {child.returncode}) before {point} {event}: "
                + log.read_text(errors="replace")[-3000:]
            )
        assert time.monotonic() < deadline, f"the run never reached {point} {event}"
        time.sleep(0.005)


def what_was_hit(events: list[tuple[float, str, str]], where: str | None) -> tuple[str, int]:
    """The stage the kill landed in (from the child's last progress line); state writes done."""
    writes = sum(1 for _, p, e in events if (p, e) == ("state_write", "end"))
    if not events:
        return "startup (before the job)", writes
    _, point, event = events[-1]
    if event == "hold":
        detail = {
            "state_write": "ingest: inside a state write, rows in, not committed",
            "fetch_reconcile": "fetch: reconciling with the hub, state corrected, batch not marked",
        }.get(point)
        return detail or f"{point} ({where})", writes
    if point == "state_write":
        return ("ingest: inside a state write" if event == "begin" else "ingest"), writes
    if point == "job":
        return ("startup (job starting)" if event == "begin" else "after the job"), writes
    if event == "begin":
        return point, writes
    return f"between {point} and the next op", writes


def run_and_kill(
    h: SyncHarness, rng: random.Random, aim: str, workdir: Path
) -> tuple[Kill, subprocess.Popen[bytes]]:
    """Start the job in a child process and SIGKILL it at a random point of ``aim``."""
    workdir.mkdir(parents=True, exist_ok=True)
    progress, log = workdir / "progress", workdir / "child.log"
    hold: dict[str, Any] | None = None
    where: str | None = None
    if aim in PURE_STAGES:
        where = rng.choice(["before its work", "after its work"])
        hold = {"at": aim, "where": where.split()[0]}
    elif aim == "track":
        where = rng.choice(["before its work", "middle", "after its work"])
        hold = {"at": aim, "where": where.split()[0]}
    elif aim == "state_write":
        hold = {"at": aim, "call": rng.randint(1, 3)}
    elif aim == "fetch_reconcile":
        hold = {"at": aim}
    plan = {
        "job": "sync_work_orders_job",
        "run_config": QUIET,
        "settings": {
            "apismith_url": h.settings.apismith_url,
            "schedulehub_url": h.settings.schedulehub_url,
            "default_batch_size": 20,
            "sync_worker_threads": 1,
            **FAST_RETRIES,
        },
        "partition": PARTITION,
        "progress": str(progress),
        "hold": hold,
        "flush_rows": 60,
        "min_flush_rows": 40,
    }
    h.hub.injector.plan = SLOW_HUB
    h.api.injector.plan = SLOW_ERP if aim in ("fetch", "anywhere") else CALM
    env = {**os.environ, "DATABASE_URL": h.database_url}
    command = [sys.executable, "-m", "syncflow_dagster_tests.reliability.kill_runner"]
    with log.open("wb") as out:
        child = subprocess.Popen(
            [*command, orjson.dumps(plan).decode()], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        if hold is not None:
            start = _wait_for(
                progress, child, aim.replace("fetch_reconcile", "fetch_reconcile"), "hold", log
            )
            offset = rng.uniform(0.0, 0.2)
        elif aim == "fetch":
            start = _wait_for(progress, child, "fetch", "begin", log)
            offset = rng.uniform(0.0, 0.4)
        elif aim == "ingest":
            start = _wait_for(progress, child, "ingest", "begin", log)
            offset = rng.uniform(0.0, 0.6)
        else:  # anywhere in the run
            start = _wait_for(progress, child, "job", "begin", log)
            offset = rng.uniform(0.0, 3.5)
        time.sleep(max(0.0, start + offset - time.time()))
        child.kill()  # SIGKILL: no finally blocks, no cleanup
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    h.hub.injector.plan = CALM
    h.api.injector.plan = CALM
    time.sleep(0.3)  # what the child had in flight finishes at the hub
    hit, writes = what_was_hit(_events(progress), where)
    if child.returncode != -9:
        hit = f"nothing: the run had ended (exit {child.returncode})"
    return Kill(hit, round(offset, 3), writes), child


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    """The error a failed run's first failed step raised (Dagster's wrapper unwrapped)."""
    failures = [e for e in result.all_events if e.is_step_failure]
    if not failures or failures[0].step_failure_data.error is None:
        return "no step failed"
    error = failures[0].step_failure_data.error
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@pytest.mark.parametrize(("trial", "aim"), _trials())
def test_a_run_killed_anywhere_then_rerun_after_erp_changes_leaves_the_hub_exact(
    make_harness: MakeHarness, tmp_path: Path, trial: int, aim: str
) -> None:
    seed = BASE_SEED * 100 + trial
    rng = random.Random(seed)
    spec = DatasetSpec(
        seed=seed, work_orders=rng.randint(500, 800), operations_per_order=0, bad_fraction=0.01
    )
    h = make_harness(spec)
    assert h.run_entity("items").success
    assert h.run_entity("work_orders").success
    data = h.api.dataset
    before = changes_before(data, rng, seed)

    last = h.last_batch("work_orders")["id"]
    earlier = None
    if aim == "fetch_reconcile":
        # A first run dies in a state write mid-ingest: its sends are unsettled, and the next
        # run's fetch reconciles the state with the hub — which is where the second kill lands.
        earlier, _ = run_and_kill(h, rng, "state_write", tmp_path / "first")
    kill, _ = run_and_kill(h, rng, aim, tmp_path / "killed")
    hub_at_kill = h.hub_count("work_orders")
    state_at_kill = h.store.count_state("work_orders")
    dead = h.store.running_batches("work_orders")
    opened = [b for b in h.store.recent_batches("work_orders", 10) if b["id"] > last]
    killed_batch = (
        ", ".join(
            f"#{b['id']} {b['status']}{' (sends unsettled)' if b['hub_unsettled'] else ''}"
            for b in sorted(opened, key=lambda b: b["id"])
        )
        or "none opened"
    )
    after = changes_after(data, rng, seed, before)

    result = h.run_job("sync_work_orders_job", raise_on_error=False)  # as shipped: no run config
    rerun = h.last_batch("work_orders")
    check = h.reconcile(["items", "work_orders"])
    problems = list(check.problems)
    if not result.success:
        problems.insert(0, f"the rerun failed: {failure_of(result)}")
    hub_n, expected_n = check.counts["work_orders"]
    state_n = h.store.count_state("work_orders")
    if hub_n != expected_n:
        problems.append(f"hub holds {hub_n} work orders, the ERP {expected_n}")
    if state_n != hub_n:
        problems.append(f"state has {state_n} rows for {hub_n} hub records")
    still = h.store.running_batches()
    if still:
        problems.append(f"batches still running: {[b['id'] for b in still]}")
    for b in dead:
        closed = h.store.get_batch(b["id"])
        if closed["status"] == "running":
            problems.append(f"killed batch #{b['id']} was never closed")
    if h.store.get_lease("work_orders") is not None:
        problems.append("the work orders' lease is still held")
    letters = h.store.list_failed("work_orders", limit=None)
    keyed = letters.filter(pl.col("bk_hash").is_not_null()).select("bk_hash", "stage", "code")
    if keyed.height != keyed.unique().height:
        problems.append(f"{keyed.height - keyed.unique().height} dead letter(s) open twice")
    record(
        "kill",
        trial=trial,
        seed=seed,
        base_seed=BASE_SEED,
        aim=aim,
        hit=kill.hit,
        offset=kill.offset,
        state_writes_before_kill=kill.state_writes,
        earlier_kill=None if earlier is None else earlier.hit,
        hub_at_kill=hub_at_kill,
        state_at_kill=state_at_kill,
        killed_batch=killed_batch,
        erp_before=before.counts,
        erp_after=after,
        rerun=(
            f"{rerun['reconciled']}, {rerun['inserted']}, {rerun['updated']}, {rerun['deleted']}"
        ),
        hub=hub_n,
        expected=expected_n,
        exact=not problems,
        problems=problems[:5],
    )
    assert not problems, f"trial {trial} (seed {seed}, killed at {kill.hit}): {problems}"
    assert result.success and rerun["status"] == "succeeded"
