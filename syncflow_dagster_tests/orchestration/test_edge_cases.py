"""Harder paths: runs cut short by a row limit, a mapping change, a deleted waiting child."""

from pathlib import Path
from typing import Any

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import (
    MakeHarness,
    SyncHarness,
    edited_entities,
    fetch_config,
    target_field,
)

CLEAN = DatasetSpec(seed=31, work_orders=500, bad_fraction=0.0)


def run_limited(h: SyncHarness, entity: str, mode: str, max_rows: int) -> dict[str, Any]:
    config = fetch_config(entity, mode)
    config["ops"]["fetch"]["config"]["max_rows"] = max_rows
    assert h.run_job(f"sync_{entity}_job", config).success
    return h.last_batch(entity)


def test_runs_cut_short_by_the_row_limit_catch_up_run_by_run(make_harness: MakeHarness) -> None:
    h = make_harness(CLEAN)
    h.sync_parent_first()
    data = h.api.dataset
    data.update("work_orders", 120, seed=1)
    data.insert("work_orders", 80, seed=2)
    rounds = []
    for _ in range(10):
        batch = run_limited(h, "work_orders", "incremental", max_rows=60)
        rounds.append(batch)
        assert batch["status"] == "succeeded"
        assert batch["fetched"] <= 60
        if batch["inserted"] + batch["updated"] == 0:
            break
    assert sum(b["inserted"] for b in rounds) == 80
    assert sum(b["updated"] for b in rounds) == 120
    check = h.reconcile()
    assert check.ok, check.problems


def test_a_full_run_cut_short_still_finds_deletes(make_harness: MakeHarness) -> None:
    h = make_harness(CLEAN)
    h.sync_parent_first()
    gone = h.api.dataset.delete("work_order_operations", 7, seed=3)
    assert len(gone) == 7
    before = h.hub_count("work_order_operations")
    batch = run_limited(h, "work_order_operations", "full", max_rows=100)
    assert batch["status"] == "succeeded"
    assert batch["fetched"] == 100
    assert batch["deleted"] == 7
    assert h.hub_count("work_order_operations") == before - 7
    check = h.reconcile()
    assert check.ok, check.problems


def test_a_mapping_change_reaches_every_record_already_at_the_hub(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    h = make_harness(CLEAN)
    h.sync_parent_first()
    assert h.reconcile().ok

    def upper_planner(raw: dict[str, Any]) -> None:
        target_field(raw, "planner")["transforms"] = ["upper"]

    changed = h.reconfigured(edited_entities(tmp_path, "work_orders", upper_planner))
    assert not changed.reconcile(["work_orders"]).ok  # the hub holds the old mapping
    assert changed.run_entity("work_orders").success  # the configured (incremental) mode
    batch = changed.last_batch("work_orders")
    assert batch["status"] == "succeeded"
    # State written under the old mapping is not settled: every record is read and mapped again.
    assert batch["fetched"] == h.hub_count("work_orders"), "records below the watermark not re-read"
    assert (
        batch["mapping_version"]
        != h.store.recent_batches("work_orders", limit=2)[1]["mapping_version"]
    )
    check = changed.reconcile()
    assert check.ok, check.problems
    # Every order is mapped again; those whose planner was upper case already stay unchanged.
    assert batch["updated"] > 0
    assert batch["updated"] + batch["unchanged"] == h.hub_count("work_orders")


def test_a_waiting_child_the_erp_deletes_is_not_sent_when_its_parent_arrives(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(CLEAN)
    h.sync_parent_first()
    data = h.api.dataset
    data.insert_rows("work_orders", [{"WO_NO": "WO-E2E00002", "ITEM_NO": "ITM-E2E002"}])
    assert h.run_entity("work_orders").success
    assert h.store.count_pending("work_orders") == 1

    # The ERP drops the order; a full run (the one that finds deletes) sees it gone.
    data.delete_keys("work_orders", [["WO-E2E00002"]])
    assert h.run_entity("work_orders", "full").success
    assert h.last_batch("work_orders")["status"] == "succeeded"
    assert h.store.count_pending("work_orders") == 0, "a deleted record still waits to be sent"

    # Later the item it named appears; the order must not come back from the queue.
    data.insert_rows("items", [{"ITEM_NO": "ITM-E2E002"}])
    assert h.run_entity("items").success
    assert h.run_entity("work_orders").success
    check = h.reconcile()
    assert check.ok, check.problems
    assert h.store.count_pending("work_orders") == 0
