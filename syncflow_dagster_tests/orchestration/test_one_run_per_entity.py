"""Two runs of one entity never overlap, whatever launched them (a lease in the state DB).

A second run while the first works fails fast and says why. A first run that
stalls (SIGSTOP) loses its lease when it expires; the next run takes over,
and the stalled one, woken up, sends nothing more: its older snapshot never
lands over the newer run's.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import (
    FAST_RETRIES,
    MakeHarness,
    SyncHarness,
    fetch_config,
)

ORDERS = 800
SPEC = DatasetSpec(seed=23, work_orders=ORDERS, operations_per_order=0, bad_fraction=0.0)
SLOW_HUB = "latency=1.0:100"


@contextmanager
def child_run(h: SyncHarness, **settings: object) -> Iterator[subprocess.Popen[bytes]]:
    """``sync_work_orders_job`` in a process of its own (small batches, a slow hub)."""
    child_settings = {
        "apismith_url": h.settings.apismith_url,
        "schedulehub_url": h.settings.schedulehub_url,
        "database_url": h.settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "default_batch_size": 20,
        "sync_worker_threads": 1,
        **FAST_RETRIES,
        **settings,
    }
    command = [
        sys.executable,
        "-m",
        "syncflow_dagster_tests.orchestration.job_runner",
        "sync_work_orders_job",
        orjson.dumps(fetch_config("work_orders")).decode(),
        orjson.dumps(child_settings).decode(),
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()


def _until_ingesting(h: SyncHarness, child: subprocess.Popen[bytes], at_least: int) -> None:
    deadline = time.monotonic() + 120
    while h.hub_count("work_orders") < at_least:
        assert child.poll() is None, child.communicate()[0].decode(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "the child never got going"
        time.sleep(0.02)


def test_a_second_run_while_the_first_works_fails_fast_naming_the_holder(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, hub_faults=SLOW_HUB)
    assert h.run_entity("items").success
    with child_run(h) as child:
        _until_ingesting(h, child, 40)
        started = time.monotonic()
        second = h.run_entity("work_orders", raise_on_error=False)
        assert time.monotonic() - started < 30
        assert not second.success
        failure = next(e for e in second.all_events if e.is_step_failure)
        message = str(failure.step_failure_data.error)
        assert "another run is syncing 'work_orders'" in message
        assert child.wait(timeout=180) == 0, child.communicate()[0].decode(errors="replace")
    # The refused run recorded nothing; the first one finished alone, exactly.
    batches = [b for b in h.store.recent_batches("work_orders", limit=10)]
    assert len(batches) == 1 and batches[0]["status"] == "succeeded"
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_stalled_run_loses_its_lease_and_never_sends_its_old_snapshot(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, hub_faults=SLOW_HUB)
    assert h.run_entity("items").success
    lease = 6.0
    with child_run(h, run_lease_seconds=lease) as child:
        _until_ingesting(h, child, 40)
        os.kill(child.pid, signal.SIGSTOP)
        # The ERP changes every order; the stalled run holds their old versions in memory.
        orders = h.api.dataset.ground_truth("work_orders").get_column("WO_NO").to_list()
        h.api.dataset.update_keys("work_orders", [[o] for o in orders], {"PRIORITY": 1})
        time.sleep(lease + 1)  # its lease expires
        h.monkeypatch.setenv("RUN_LEASE_SECONDS", str(lease))
        assert h.run_entity("work_orders").success  # takes the entity over
        taken = h.last_batch("work_orders")
        os.kill(child.pid, signal.SIGCONT)
        assert child.wait(timeout=120) != 0  # it woke up without its lease and stopped
        output = child.communicate()[0].decode(errors="replace")
        assert "lease" in output
    stalled = [b for b in h.store.recent_batches("work_orders", limit=10) if b["id"] < taken["id"]]
    assert stalled and stalled[-1]["status"] == "failed"
    # Nothing of the old snapshot landed after the newer run: the hub holds the ERP's values.
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems
