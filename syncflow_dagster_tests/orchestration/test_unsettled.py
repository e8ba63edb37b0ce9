"""SyncFlow knows what it may have changed at the hub: lost answers, then the ERP changes.

A run whose answers were lost (the hub applied its batches, SyncFlow never
heard) fails; before the rerun the ERP deletes or reverts those very rows.
The rerun must leave the hub equal to the ERP — the state alone would say the
hub never got them.
"""

import polars as pl

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster_tests.orchestration.conftest import MakeHarness, SyncHarness

SPEC = DatasetSpec(seed=41, work_orders=300, operations_per_order=0, bad_fraction=0.0)
EVERY_ANSWER_LOST = FaultPlan.parse("lost=1.0,only=/api/v1/ingest")


def _failed_with_lost_answers(h: SyncHarness) -> dict[str, object]:
    h.hub.injector.plan = EVERY_ANSWER_LOST
    result = h.run_entity("work_orders", raise_on_error=False)
    h.hub.injector.plan = FaultPlan()
    assert not result.success
    batch = h.last_batch("work_orders")
    assert batch["status"] == "failed" and batch["error_kind"] == "transient"
    assert batch["hub_unsettled"]
    return batch


def test_rows_the_hub_got_unseen_and_the_erp_then_deleted_are_deleted_at_the_hub(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, max_retries=2)
    h.sync_parent_first()
    before = h.hub_count("work_orders")
    new = h.api.dataset.insert("work_orders", 120, seed=1)
    failed = _failed_with_lost_answers(h)
    assert h.hub_count("work_orders") == before + 120  # applied, never acknowledged
    assert h.store.count_state("work_orders") == before

    h.api.dataset.delete_keys("work_orders", [list(k) for k in new])
    assert h.run_entity("work_orders").success
    rerun = h.last_batch("work_orders")
    assert rerun["reconciled"] == 120 and rerun["deleted"] == 120
    assert h.store.get_batch(failed["id"])["reconciled_by"] == rerun["id"]
    assert h.hub_count("work_orders") == before
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_value_the_hub_got_unseen_and_the_erp_then_reverted_is_reverted(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC, max_retries=2)
    h.sync_parent_first()
    data = h.api.dataset
    orders = data.ground_truth("work_orders").get_column("WO_NO").head(50).to_list()
    keys = [[o] for o in orders]
    data.update_keys("work_orders", keys, {"PRIORITY": 7})
    assert h.run_entity("work_orders").success
    data.update_keys("work_orders", keys, {"PRIORITY": 8})
    _failed_with_lost_answers(h)  # the hub holds priority 8 now
    hub_entity = h.catalog["work_orders"].target.entity
    priorities = {
        r["data"]["priority"]
        for r in h.hub_client.records(hub_entity)
        if r["data"]["order_no"] in set(orders)
    }
    assert priorities == {8}

    data.update_keys("work_orders", keys, {"PRIORITY": 7})  # the ERP goes back to 7
    assert h.run_entity("work_orders").success
    rerun = h.last_batch("work_orders")
    assert rerun["reconciled"] == 50 and rerun["updated"] == 50
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_clean_run_leaves_nothing_to_reconcile(make_harness: MakeHarness) -> None:
    h = make_harness(SPEC)
    batches = h.sync_parent_first()
    assert not any(b["hub_unsettled"] for b in batches.values())
    h.api.dataset.update("work_orders", 10, seed=2)
    assert h.run_entity("work_orders").success
    again = h.last_batch("work_orders")
    assert again["reconciled"] == 0 and not again["hub_unsettled"]
    assert pl.Series(h.store.unreconciled_batches("work_orders")).len() == 0
