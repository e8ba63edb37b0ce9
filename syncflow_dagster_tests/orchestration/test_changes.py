"""ERP changes reach the hub: updates, inserts, deletes, late parents, deleted parents."""

from typing import Any

import polars as pl
import sqlalchemy as sa

from syncflow_dagster.edges.state.tables import pending_children
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import MakeHarness, SyncHarness

CLEAN = DatasetSpec(seed=9, work_orders=500, bad_fraction=0.0)
"""No bad rows: every count below is exact."""


def assert_conserved(batch: dict[str, Any], delete_candidates: int = 0) -> None:
    """Every record the batch took up landed in exactly one bucket."""
    assert batch["status"] == "succeeded", batch["error"]
    entered = batch["fetched"] + batch["resolved_children"] + delete_candidates
    landed = (
        batch["inserted"]
        + batch["updated"]
        + batch["deleted"]
        + batch["unchanged"]
        + batch["pending_children"]
        + batch["dead_lettered"]
    )
    assert entered == landed, batch


def pending_rows(h: SyncHarness, entity: str) -> pl.DataFrame:
    """Every pending_children row of the entity (any status)."""
    with h.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(pending_children).where(pending_children.c.entity == entity)
        ).mappings()
        return pl.DataFrame([dict(r) for r in rows], infer_schema_length=None)


def test_updates_inserts_and_deletes_propagate(make_harness: MakeHarness) -> None:
    h = make_harness(CLEAN)
    first = h.sync_parent_first()
    assert all(b["dead_lettered"] == b["pending_children"] == 0 for b in first.values())

    data = h.api.dataset
    updated_wo = data.update("work_orders", 20, seed=1)
    inserted_wo = data.insert("work_orders", 10, seed=2)
    updated_items = data.update("items", 5, seed=3)
    inserted_items = data.insert("items", 4, seed=4)
    inserted_ops = data.insert("work_order_operations", 12, seed=5)
    updated_wc = data.update("work_centers", 2, seed=6)
    assert len(set(updated_wo)) == 20 and len(inserted_wo) == 10

    second = h.sync_parent_first("incremental")
    expected = {
        "items": (len(inserted_items), len(updated_items)),
        "work_centers": (0, len(updated_wc)),
        "work_orders": (len(inserted_wo), len(updated_wo)),
        "work_order_operations": (len(inserted_ops), 0),
    }
    for entity, (inserted, updated) in expected.items():
        batch = second[entity]
        assert_conserved(batch)
        assert (batch["inserted"], batch["updated"], batch["deleted"]) == (inserted, updated, 0)
        assert batch["fetched"] == inserted + updated  # only rows above the watermark
        assert batch["ingested"] == inserted + updated
        assert batch["watermark_to"] > first[entity]["watermark_to"] or not batch["fetched"]
    check = h.reconcile()
    assert check.ok, check.problems

    # Deletes: operations, and items no work order names. The shipped configuration
    # (sync.deletes: every_run) finds them in incremental runs.
    deleted_ops = data.delete("work_order_operations", 15, seed=7)
    deleted_items = data.delete_keys("items", [list(k) for k in inserted_items[:2]])
    assert len(deleted_ops) == 15 and len(deleted_items) == 2
    before = {e: h.hub_count(e) for e in h.entities}

    incremental = h.sync_parent_first("incremental")
    deleted = {"items": 2, "work_centers": 0, "work_orders": 0, "work_order_operations": 15}
    for entity, n in deleted.items():
        batch = incremental[entity]
        assert_conserved(batch, delete_candidates=n)
        assert (batch["deleted"], batch["delete_candidates"]) == (n, n)
        assert batch["deletes_checked"]
        assert batch["inserted"] == batch["updated"] == batch["fetched"] == 0
        assert h.hub_count(entity) == before[entity] - n
        assert h.store.count_state(entity) == before[entity] - n
    check = h.reconcile()
    assert check.ok, check.problems

    # A full pass afterwards re-reads everything and finds nothing left to do.
    third = h.sync_parent_first("full")
    for entity, n in deleted.items():
        batch = third[entity]
        assert_conserved(batch)
        assert batch["deleted"] == batch["inserted"] == batch["updated"] == 0
        assert batch["unchanged"] == batch["fetched"] == before[entity] - n
    check = h.reconcile()
    assert check.ok, check.problems


def test_a_child_waits_for_its_parent_and_is_released_when_it_arrives(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(CLEAN)
    h.sync_parent_first()
    data = h.api.dataset
    data.insert_rows("work_orders", [{"WO_NO": "WO-E2E00001", "ITEM_NO": "ITM-E2E001"}])
    wo_at_hub = h.hub_count("work_orders")

    assert h.run_entity("work_orders", "incremental").success
    waiting = h.last_batch("work_orders")
    assert_conserved(waiting)
    assert (waiting["fetched"], waiting["pending_children"], waiting["inserted"]) == (1, 1, 0)
    queued = h.store.waiting_pending("work_orders")
    assert queued.height == 1
    child = queued.row(0, named=True)
    assert "WO-E2E00001" in child["payload"]
    assert child["waiting_for"]  # names the missing item
    assert h.hub_count("work_orders") == wo_at_hub
    check = h.reconcile()  # the child is not expected at the hub while its parent is missing
    assert check.ok, check.problems

    # The parent reaches the ERP; the child's job runs first, so the parent is not at the hub yet.
    data.insert_rows("items", [{"ITEM_NO": "ITM-E2E001"}])
    still = h.run_entity("work_orders", "incremental")
    assert still.success
    again = h.last_batch("work_orders")
    assert_conserved(again)
    assert again["resolved_children"] == 0 and again["inserted"] == 0
    assert h.store.count_pending("work_orders") == 1

    # Parent first: the waiting child is released and sent.
    assert h.run_entity("items", "incremental").success
    assert h.last_batch("items")["inserted"] == 1
    assert h.run_entity("work_orders", "incremental").success
    released = h.last_batch("work_orders")
    assert_conserved(released)
    assert (released["fetched"], released["resolved_children"], released["inserted"]) == (0, 1, 1)
    assert released["pending_children"] == 0
    assert h.store.count_pending("work_orders") == 0
    rows = pending_rows(h, "work_orders")
    assert rows.get_column("status").to_list() == ["released"]
    assert rows.get_column("released_at").null_count() == 0
    assert h.hub_count("work_orders") == wo_at_hub + 1
    check = h.reconcile()
    assert check.ok, check.problems


def test_a_parent_deleted_with_its_children_goes_through_in_sync_all(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(CLEAN)
    first = h.run_all()
    assert first.success
    check = h.reconcile()
    assert check.ok, check.problems

    data = h.api.dataset
    ops = data.ground_truth("work_order_operations")
    parents = ops.get_column("WO_NO").unique().sort().head(3)
    children = ops.filter(pl.col("WO_NO").is_in(parents.implode()))
    assert children.height >= 3
    data.delete_keys("work_order_operations", children.select("WO_NO", "OP_SEQ").rows())
    data.delete_keys("work_orders", [[wo] for wo in parents.to_list()])
    wo_before = h.hub_count("work_orders")
    ops_before = h.hub_count("work_order_operations")

    result = h.run_all(mode="full")
    assert result.success
    batches = {(b["entity"], b["mode"]): b for b in h.batches_of_run(result.run_id)}
    # The work orders' chain ran first: the hub refused the deletes while operations named them.
    refused = batches[("work_orders", "full")]
    assert refused["deleted"] == 0 and refused["pending_children"] == 3
    assert_conserved(refused, delete_candidates=3)
    ops_batch = batches[("work_order_operations", "full")]
    assert ops_batch["deleted"] == children.height
    assert_conserved(ops_batch, delete_candidates=children.height)
    # The retry op of work orders ran after every chain and sent the deletes again.
    retried = batches[("work_orders", "retry")]
    assert retried["deleted"] == 3 and retried["resolved_children"] == 3
    assert_conserved(retried)
    assert retried["id"] > ops_batch["id"]

    assert h.hub_count("work_orders") == wo_before - 3
    assert h.hub_count("work_order_operations") == ops_before - children.height
    assert h.store.count_pending() == 0
    assert h.store.count_state("work_orders") == wo_before - 3
    check = h.reconcile()
    assert check.ok, check.problems
