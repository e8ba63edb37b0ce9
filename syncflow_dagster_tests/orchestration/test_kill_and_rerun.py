"""A run killed mid-ingest, then rerun, leaves the hub equal to the source."""

import subprocess
import sys
import time

import orjson

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import (
    FAST_RETRIES,
    MakeHarness,
    fetch_config,
)

ORDERS = 1200
SPEC = DatasetSpec(seed=21, work_orders=ORDERS, operations_per_order=0, bad_fraction=0.0)
SLOW_HUB = "latency=1.0:100"
"""Every hub request waits 100 ms: the child's ingest takes seconds, so it can be caught."""


def test_a_run_killed_mid_ingest_then_rerun_loses_and_duplicates_nothing(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, hub_faults=SLOW_HUB)
    assert h.run_entity("items").success

    child_settings = {
        "apismith_url": h.settings.apismith_url,
        "schedulehub_url": h.settings.schedulehub_url,
        "database_url": h.settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "default_batch_size": 25,
        "sync_worker_threads": 2,
        **FAST_RETRIES,
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
        deadline = time.monotonic() + 120
        while h.hub_count("work_orders") < ORDERS // 4:
            assert child.poll() is None, child.communicate()[0].decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.01)
        child.kill()  # SIGKILL: no cleanup, no finally blocks
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -9

    time.sleep(0.3)  # let requests the child had in flight finish at the hub
    at_kill = h.hub_count("work_orders")
    assert ORDERS // 4 <= at_kill < ORDERS, "killed partway through the ingest"
    # State follows acknowledgement: no state row for a record the hub does not hold.
    settled = h.store.count_state("work_orders")
    assert settled <= at_kill
    killed = h.last_batch("work_orders")
    assert killed["status"] == "running" and killed["watermark_to"] is None

    result = h.run_entity("work_orders")
    assert result.success
    rerun = h.last_batch("work_orders")
    assert rerun["id"] > killed["id"] and rerun["status"] == "succeeded"
    # The killed batch never settled a watermark: the rerun read everything again.
    assert rerun["watermark_from"] is None
    assert rerun["fetched"] == ORDERS
    assert rerun["inserted"] == ORDERS - at_kill
    assert rerun["inserted"] + rerun["unchanged"] == ORDERS
    # The killed batch had sent records without recording every answer: the rerun first
    # took the hub's own records into the state, so nothing the hub holds is sent again.
    assert rerun["reconciled"] == at_kill - settled
    assert rerun["ingested"] == ORDERS - at_kill
    killed_after = h.store.get_batch(killed["id"])
    assert killed_after["status"] == "failed" and killed_after["hub_unsettled"]
    assert killed_after["reconciled_by"] == rerun["id"]

    assert h.hub_count("work_orders") == ORDERS
    assert h.store.count_state("work_orders") == h.hub_count("work_orders")
    assert len(h.hub_hashes("work_orders")) == ORDERS
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems
