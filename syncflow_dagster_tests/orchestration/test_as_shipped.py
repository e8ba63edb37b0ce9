"""Correct as shipped: the shipped configuration, no hand-written run config, keeps the hub exact.

Every run here uses the entity's configured mode (or a mode for all, and a row
cap, to show that neither changes the outcome), with rounds of ERP changes —
updates, inserts, deletes, children before their parents, a waiting child the
ERP deletes, a key deleted and inserted again — checked against the ERP's
ground truth after every round.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import polars as pl
import pytest

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.orchestration.factories.sync_job import sync_job_name
from syncflow_dagster.pipeline.lifecycle import close_dead_batches
from syncflow_dagster_tests.orchestration.conftest import (
    MakeHarness,
    SyncHarness,
    edited_entities,
)

ERP = DatasetSpec(seed=77, work_orders=1500, bad_fraction=0.01)


def run_config(entities: list[str], mode: str | None, cap: int | None) -> dict[str, Any]:
    """sync_all_job's config for one mode and cap (empty: as shipped)."""
    fetch: dict[str, Any] = {}
    if mode:
        fetch["mode"] = mode
    if cap:
        fetch["max_rows"] = cap
    if not fetch:
        return {}
    return {"ops": {f"{e}__fetch": {"config": fetch} for e in entities}}


def caught_up(h: SyncHarness, run: dg.ExecuteInProcessResult, cap: int | None) -> bool:
    """Whether the run read every entity to the end of its data (no pass left open)."""
    for batch in h.batches_of_run(run.run_id):
        if batch["mode"] == "retry":
            continue
        if cap is not None and batch["fetched"] >= cap:
            return False
        if h.store.get_position(batch["entity"]).pass_open:
            return False
    return True


def sync_round(h: SyncHarness, mode: str | None, cap: int | None) -> int:
    """Run sync_all_job until every entity is caught up; how many runs it took."""
    for runs in range(1, 40):
        result = h.run_job("sync_all_job", run_config(h.entities, mode, cap))
        assert result.success
        for batch in h.batches_of_run(result.run_id):
            assert batch["status"] == "succeeded", batch["error"]
        if caught_up(h, result, cap):
            return runs
    raise AssertionError("never caught up")


def _orphan_round(data: ErpDataset) -> None:
    """A work order for an item the ERP has not got yet, and one that will be deleted."""
    data.insert_rows(
        "work_orders",
        [
            {"WO_NO": "WO-LATE0001", "ITEM_NO": "ITM-LATE01"},
            {"WO_NO": "WO-GONE0001", "ITEM_NO": "ITM-LATE02"},
        ],
    )
    data.update("work_orders", 40, seed=11)
    data.update("items", 6, seed=12)
    data.insert("work_orders", 25, seed=13)
    data.insert("work_order_operations", 30, seed=14)
    data.delete("work_order_operations", 33, seed=15)


def _parent_arrives_round(data: ErpDataset) -> None:
    """The first item arrives; the other waiting work order is deleted before its item does."""
    data.insert_rows("items", [{"ITEM_NO": "ITM-LATE01"}])
    data.delete_keys("work_orders", [["WO-GONE0001"]])
    data.insert_rows("items", [{"ITEM_NO": "ITM-LATE02"}])


def _delete_with_children_round(data: ErpDataset) -> None:
    """Work orders deleted with their operations, an item no order names, a reverted value."""
    ops = data.ground_truth("work_order_operations").filter(pl.col("_bad").is_null())
    orders = ops.get_column("WO_NO").unique().sort().head(8)
    children = ops.filter(pl.col("WO_NO").is_in(orders.implode()))
    data.delete_keys("work_order_operations", children.select("WO_NO", "OP_SEQ").rows())
    data.delete_keys("work_orders", [[o] for o in orders.to_list()])
    named = data.ground_truth("work_orders").get_column("ITEM_NO").unique()
    items = data.ground_truth("items").filter(
        pl.col("_bad").is_null() & ~pl.col("ITEM_NO").is_in(named.implode())
    )
    data.delete_keys("items", [[items.item(0, "ITEM_NO")]])
    wo = data.ground_truth("work_orders").filter(pl.col("_bad").is_null()).item(0, "WO_NO")
    data.update_keys("work_orders", [[wo]], {"PRIORITY": 8})
    data.update_keys("work_orders", [[wo]], {"PRIORITY": 7})


def _reinsert_round(data: ErpDataset) -> None:
    """A key deleted in the last round comes back with new values; more plain changes."""
    data.insert_rows("work_orders", [{"WO_NO": "WO-GONE0001", "ITEM_NO": "ITM-LATE02"}])
    data.update("work_order_operations", 50, seed=21)
    data.delete("work_order_operations", 5, seed=22)


ROUNDS: list[tuple[str, Callable[[ErpDataset], None]]] = [
    ("initial load", lambda data: None),
    ("changes and a child before its parent", _orphan_round),
    ("the parent arrives, a waiting child is deleted", _parent_arrives_round),
    ("orders deleted with their operations", _delete_with_children_round),
    ("a deleted key comes back", _reinsert_round),
]


@pytest.mark.parametrize(
    ("mode", "cap"),
    [(None, None), ("full", None), (None, 1000), ("full", 1000)],
    ids=["as-shipped", "full", "as-shipped-capped", "full-capped"],
)
def test_rounds_of_erp_changes_leave_the_hub_exact(
    make_harness: MakeHarness, mode: str | None, cap: int | None
) -> None:
    h = make_harness(ERP)
    for title, change in ROUNDS:
        change(h.api.dataset)
        runs = sync_round(h, mode, cap)
        check = h.reconcile()
        assert check.ok, f"after '{title}' ({runs} runs): {check.problems}"
    # The waiting work order whose ERP row was deleted expired: never created at the hub.
    statuses = h.store.engine.connect().exec_driver_sql(
        "SELECT status FROM pending_children WHERE entity = 'work_orders'"
    )
    assert "expired" in {row[0] for row in statuses}


def test_capped_full_passes_resume_and_see_rows_changed_meanwhile(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(DatasetSpec(seed=8, work_orders=2500, operations_per_order=0, bad_fraction=0))
    assert h.run_entity("items").success
    config = {"ops": {"fetch": {"config": {"mode": "full", "max_rows": 1000}}}}
    seen = []
    for i in range(6):
        if i == 1:  # rows behind the pass change: their new rowversions sort last
            changed = h.api.dataset.update("work_orders", 30, seed=5)
        assert h.run_job("sync_work_orders_job", config).success
        batch = h.last_batch("work_orders")
        position = h.store.get_position("work_orders")
        seen.append((batch["fetched"], batch["watermark_from"], position.pass_open))
        if not position.pass_open:
            break
    # 2500 rows, and the changed ones the pass had already read once more, in their new
    # version: two stretches of 1000 and a shorter one (a stretch may read its
    # predecessor's last row again, never more).
    fetched = [n for n, _, _ in seen]
    assert len(fetched) == 3 and fetched[:2] == [1000, 1000] and fetched[2] < 1000
    assert 2500 < sum(fetched) <= 2530 + 2
    assert seen[0][1] is None and all(mark is not None for _, mark, _ in seen[1:])
    assert seen[-1][2] is False  # the pass closed
    assert h.store.get_position("work_orders").passes_completed == 1
    assert len(changed) == 30
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_full_run_with_nothing_but_deletes_conserves_and_sends_them(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(DatasetSpec(seed=3, work_orders=60, operations_per_order=0, bad_fraction=0))
    assert h.run_entity("items").success
    assert h.run_entity("work_orders", "full").success
    gone = h.api.dataset.delete("work_orders", 10, seed=1)
    before = h.hub_count("work_orders")
    assert h.run_entity("work_orders", "full").success
    batch = h.last_batch("work_orders")
    assert batch["status"] == "succeeded", batch["error"]
    assert (batch["fetched"], batch["unchanged"], batch["delete_candidates"]) == (50, 50, 10)
    assert batch["deleted"] == len(gone) == 10
    assert h.hub_count("work_orders") == before - 10
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_every_job_runs_with_no_run_config_at_all(make_harness: MakeHarness) -> None:
    h = make_harness(DatasetSpec(seed=2, work_orders=80, bad_fraction=0))
    for entity in h.entities:
        job = h.defs.get_job_def(sync_job_name(entity))
        assert dg.validate_run_config(job, {}) is not None  # the launchpad starts valid
        result = h.run_job(job.name)
        assert result.success
        assert h.last_batch(entity)["status"] == "succeeded"
    assert dg.validate_run_config(h.defs.get_job_def("sync_all_job"), {}) is not None
    assert h.run_job("sync_all_job").success
    check = h.reconcile()
    assert check.ok, check.problems


def test_a_declared_column_apismith_does_not_serve_fails_the_run_before_sending(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    def typo(raw: dict[str, Any]) -> None:
        columns = raw["source"]["columns"]
        columns["REMARKS"] = columns.pop("NOTES")
        for f in raw["target"]["fields"]:
            if f.get("from") == "NOTES":
                f["from"] = "REMARKS"

    h = make_harness(DatasetSpec(seed=2, work_orders=50, bad_fraction=0))
    assert h.run_entity("items").success
    broken = h.reconfigured(edited_entities(tmp_path, "work_orders", typo))
    result = broken.run_entity("work_orders", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "work_orders.yaml" in message and "entity 'work_orders'" in message
    assert "REMARKS" in message and "source.columns" in message
    assert broken.hub_count("work_orders") == 0
    batch = broken.last_batch("work_orders")
    assert (batch["status"], batch["error_kind"]) == ("failed", "configuration")


def test_killed_runs_batch_is_closed_once_its_lease_is_dead(make_harness: MakeHarness) -> None:
    """A batch left running by a process that died is closed without waiting for its entity."""
    h = make_harness(DatasetSpec(seed=2, work_orders=20, bad_fraction=0))
    batch = h.store.start_batch("items", "run-that-died", "incremental")
    lease = h.store.acquire_lease("items", "run-that-died", 60)
    assert lease.previous is None
    assert close_dead_batches(h.store, None) == []  # its lease is alive
    with h.store.engine.begin() as conn:  # the process is gone: its pid no longer exists
        conn.exec_driver_sql("UPDATE sync_leases SET holder_pid = 2147483000")
    assert close_dead_batches(h.store, None) == [batch]
    closed = h.store.get_batch(batch)
    assert closed["status"] == "failed" and closed["error_kind"] == "transient"
    assert h.store.get_lease("items") is None


def test_compare_data_hash_catches_a_change_under_an_unchanged_rowversion(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(DatasetSpec(seed=4, work_orders=60, operations_per_order=0, bad_fraction=0))
    h.sync_parent_first()
    with ApiSmithClient(h.api.url, h.api.token) as source:
        rows = source.fetch("work_orders", ["WO_NO", "PRIORITY", "ORA_ROWSCN"]).frame
    wo, rowversion = rows.item(0, "WO_NO"), rows.item(0, "ORA_ROWSCN")
    truth = h.api.dataset.ground_truth("work_orders").filter(pl.col("WO_NO") == wo)
    line = {k: v for k, v in truth.drop("_bad", "_bad_column", "_rid").row(0, named=True).items()}
    line = {
        k: v.isoformat() if hasattr(v, "isoformat") else str(v) if v is not None else None
        for k, v in line.items()
    }
    line.update({"PRIORITY": str(999 - int(line["PRIORITY"] or 0)), "ORA_ROWSCN": rowversion})
    # The ERP changed a value and did not raise the row's rowversion (it cannot be trusted).
    h.api.dataset.serve_raw_lines("work_orders", {(wo,): orjson.dumps(line).decode()})

    assert h.run_entity("work_orders", "full").success
    trusted = h.last_batch("work_orders")
    assert trusted["updated"] == 0 and trusted["unchanged"] == trusted["fetched"]

    config = {"ops": {"fetch": {"config": {"mode": "full", "compare": "data_hash"}}}}
    assert h.run_job("sync_work_orders_job", config).success
    hashed = h.last_batch("work_orders")
    assert hashed["updated"] == 1 and hashed["normalized"] == hashed["fetched"]
    hub_entity = h.catalog["work_orders"].target.entity
    [record] = [r for r in h.hub_client.records(hub_entity) if r["data"]["order_no"] == wo]
    assert record["data"]["priority"] == int(line["PRIORITY"])
