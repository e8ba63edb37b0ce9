"""A batch the hub never answers is a transient dead letter; an outage fails the run loudly."""

import dagster as dg

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster_tests.orchestration.conftest import (
    APISMITH_TOKEN,
    FAST_RETRIES,
    SCHEDULEHUB_TOKEN,
    MakeHarness,
)

ORDERS = 600
BATCH = 50
SPEC = DatasetSpec(seed=41, work_orders=ORDERS, operations_per_order=0, bad_fraction=0.0)


def test_one_unanswered_batch_is_dead_lettered_and_the_rest_goes_on(
    make_harness: MakeHarness,
) -> None:
    # One batch at a time, so the hub's requests come in a known order.
    h = make_harness(SPEC, default_batch_size=BATCH, sync_worker_threads=1)
    assert h.run_entity("items").success
    assert h.run_entity("work_centers").success
    # Request 1 of the run is the map step's schema check, 2.. the ingest batches: the fourth
    # batch meets 503 on its first try and on every retry.
    first = h.hub.injector.count + 1
    attempts = FAST_RETRIES["max_retries"] + 1
    h.hub.injector.plan = FaultPlan(schedule={first + 4 + i: "503" for i in range(attempts)})
    assert h.run_entity("work_orders").success
    h.hub.injector.plan = FaultPlan()
    batch = h.last_batch("work_orders")
    assert batch["status"] == "succeeded"
    assert (batch["inserted"], batch["dead_lettered"]) == (ORDERS - BATCH, BATCH)
    assert h.hub_count("work_orders") == h.store.count_state("work_orders") == ORDERS - BATCH
    letters = h.store.list_failed("work_orders")
    assert letters.height == BATCH and set(letters.get_column("error_kind")) == {"transient"}
    assert "503" in letters.item(0, "detail")


def test_an_outage_mid_ingest_fails_the_batch_and_a_rerun_completes(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, default_batch_size=BATCH, sync_worker_threads=1)
    assert h.run_entity("items").success
    assert h.run_entity("work_centers").success

    # From the fourth batch on, the hub answers 503 to everything: three batches in a row
    # fail after their retries, and the run stops.
    first = h.hub.injector.count + 1
    h.hub.injector.plan = FaultPlan(schedule={first + 4 + i: "503" for i in range(200)})
    failed = h.run_entity("work_orders", raise_on_error=False)
    assert not failed.success
    failures = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["ingest"]

    batch = h.last_batch("work_orders")
    assert batch["status"] == "failed" and batch["run_id"] == failed.run_id
    assert batch["error_kind"] == "transient"
    assert batch["watermark_to"] is None
    assert "ScheduleHub" in batch["error"] and "503" in batch["error"]
    assert APISMITH_TOKEN not in batch["error"] and SCHEDULEHUB_TOKEN not in batch["error"]
    # The three batches the hub acknowledged are in the state, and nothing else.
    assert h.hub_count("work_orders") == 3 * BATCH
    assert h.store.count_state("work_orders") == 3 * BATCH

    h.hub.injector.plan = FaultPlan()
    assert h.run_entity("work_orders").success
    rerun = h.last_batch("work_orders")
    assert rerun["status"] == "succeeded"
    assert rerun["fetched"] == ORDERS  # the failed batch settled no watermark
    assert rerun["unchanged"] == 3 * BATCH  # settled at fetch: never sent again
    assert rerun["inserted"] == rerun["ingested"] == ORDERS - 3 * BATCH
    assert h.hub_count("work_orders") == h.store.count_state("work_orders") == ORDERS
    check = h.reconcile(["items", "work_centers", "work_orders"])
    assert check.ok, check.problems
