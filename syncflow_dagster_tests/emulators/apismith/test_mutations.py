"""Mutations, in-process and over the admin API, and how they show through the read API."""

from decimal import Decimal

import httpx
import polars as pl
import pytest

from syncflow_dagster.emulators.apismith import ENTITIES, DatasetSpec, ErpDataset, MutationError
from syncflow_dagster.testing.apismith import ApiSmithHandle
from syncflow_dagster_tests.emulators.apismith import normalizer
from syncflow_dagster_tests.emulators.apismith.paging import read_keys, read_records


def _key(entity: str, record: dict[str, object]) -> tuple[object, ...]:
    return tuple(record[k] for k in ENTITIES[entity].key)


def _truth(data: ErpDataset, entity: str, key: tuple[object, ...]) -> dict[str, object]:
    names = ENTITIES[entity].key
    frame = data.ground_truth(entity).filter(
        pl.all_horizontal(pl.col(n) == v for n, v in zip(names, key, strict=True))
    )
    assert frame.height == 1, key
    return frame.row(0, named=True)


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_updates_show_through_since_rowversion(fresh_api: ApiSmithHandle, entity: str) -> None:
    data = fresh_api.dataset
    before = data.max_rowversion
    changed = data.update(entity, 4, seed=1)
    assert len(changed) == len(set(changed)) == 4
    with fresh_api.client() as client:
        newer, _ = read_records(client, entity, limit=10, since=before)
        keys = read_keys(client, entity)
    assert sorted(_key(entity, r) for r in newer) == sorted(changed)
    assert all(r["ORA_ROWSCN"] > before for r in newer)  # type: ignore[operator]
    assert set(changed) <= {tuple(k) for k in keys}
    for record in newer:
        truth = _truth(data, entity, _key(entity, record))
        assert truth["_bad"] is None
        normalized = normalizer.row(ENTITIES[entity], record)
        assert normalized == {c: truth[c] for c in ENTITIES[entity].column_names}


def _duplicates(data: ErpDataset, entity: str) -> int:
    return data.ground_truth(entity).filter(pl.col("_bad") == "duplicate_key").height


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_inserts_and_deletes_show_in_keys(fresh_api: ApiSmithHandle, entity: str) -> None:
    data = fresh_api.dataset
    before = data.max_rowversion
    inserted = data.insert(entity, 15, seed=2)
    deleted = data.delete(entity, 4, seed=3)
    assert len(inserted) == 15 and len(deleted) == 4
    with fresh_api.client() as client:
        keys = {tuple(k) for k in read_keys(client, entity, limit=100)}
        newer, _ = read_records(client, entity, since=before)
        count = client.get(f"/api/v1/entities/{entity}/count").json()["count"]
    assert set(inserted) - set(deleted) <= keys
    assert not set(deleted) & keys
    assert {_key(entity, r) for r in newer} == set(inserted) - set(deleted)
    assert count == data.ground_truth(entity).height
    for key in set(inserted) - set(deleted):
        assert _truth(data, entity, key)["_bad"] is None


def test_new_operations_follow_their_order_operations(fresh_api: ApiSmithHandle) -> None:
    data = fresh_api.dataset
    inserted = data.insert("work_order_operations", 40, seed=5)
    ops = data.ground_truth("work_order_operations")
    assert ops.select("WO_NO", "OP_SEQ").drop_nulls().is_unique().all() or _duplicates(
        data, "work_order_operations"
    )
    for wo_no, op_seq in inserted:
        assert isinstance(op_seq, int) and op_seq % 10 == 0
        assert data.ground_truth("work_orders").filter(pl.col("WO_NO") == wo_no).height >= 1


def test_a_child_before_its_parent() -> None:
    data = ErpDataset(DatasetSpec(seed=1, work_orders=200, bad_fraction=0))
    keys = data.insert_rows("work_orders", [{"WO_NO": "WO-DEMO-1", "ITEM_NO": "ITM-DEMO"}])
    assert keys == [("WO-DEMO-1",)]
    assert _truth(data, "work_orders", ("WO-DEMO-1",))["_bad"] == "orphan"
    data.insert_rows("items", [{"ITEM_NO": "ITM-DEMO", "DESCRIPTION": "Demo-Teil für Müller"}])
    assert _truth(data, "work_orders", ("WO-DEMO-1",))["_bad"] is None
    item = _truth(data, "items", ("ITM-DEMO",))
    assert item["DESCRIPTION"] == "Demo-Teil für Müller"
    assert item["_bad"] is None
    data.delete_keys("items", [["ITM-DEMO"]])
    assert _truth(data, "work_orders", ("WO-DEMO-1",))["_bad"] == "orphan"


def test_explicit_updates_change_values_and_repair_bad_rows() -> None:
    data = ErpDataset(DatasetSpec(seed=2, work_orders=2000, bad_fraction=0.05))
    before = data.max_rowversion
    bad = data.bad_rows("work_orders").filter(pl.col("_bad") == "bad_number").row(0, named=True)
    column = bad["_bad_column"]
    keys = data.update_keys("work_orders", [[bad["_k0"]]], {column: "12.5"})
    assert keys == [(bad["_k0"],)]
    fixed = _truth(data, "work_orders", (bad["_k0"],))
    assert fixed["_bad"] is None
    assert fixed[column] == Decimal("12.5")
    assert fixed["ORA_ROWSCN"] > before
    good = data.ground_truth("work_orders").filter(pl.col("_bad").is_null()).row(0, named=True)
    data.update_keys("work_orders", [[good["WO_NO"]]], {"PRIORITY": 1, "NOTES": "Eilt — sofort"})
    after = _truth(data, "work_orders", (good["WO_NO"],))
    assert (after["PRIORITY"], after["NOTES"]) == (1, "Eilt — sofort")
    data.update_keys("work_orders", [[good["WO_NO"]]])
    assert _truth(data, "work_orders", (good["WO_NO"],))["ORA_ROWSCN"] > after["ORA_ROWSCN"]  # type: ignore[operator]


def test_explicit_mutations_refuse_what_the_erp_would() -> None:
    data = ErpDataset(DatasetSpec(seed=2, work_orders=100, bad_fraction=0))
    with pytest.raises(MutationError, match="exists already"):
        data.insert_rows("items", [{"ITEM_NO": "ITM-000001"}])
    with pytest.raises(MutationError, match="needs its key"):
        data.insert_rows("items", [{"DESCRIPTION": "no key"}])
    with pytest.raises(MutationError, match="key columns"):
        data.update_keys("items", [["ITM-000001"]], {"ITEM_NO": "ITM-X"})
    with pytest.raises(MutationError, match="unknown column"):
        data.update_keys("items", [["ITM-000001"]], {"NOPE": 1})
    with pytest.raises(MutationError, match="STD_COST"):
        data.update_keys("items", [["ITM-000001"]], {"STD_COST": "abc"})


def test_mutations_are_deterministic() -> None:
    def run() -> list[object]:
        data = ErpDataset(DatasetSpec(seed=9, work_orders=300))
        out: list[object] = []
        for entity in ENTITIES:
            out += [data.update(entity, 5, 1), data.insert(entity, 5, 2), data.delete(entity, 5, 3)]
        out.append(data.ground_truth("work_order_operations").drop("_rid").rows())
        return out

    assert run() == run()


def test_admin_api(fresh_api: ApiSmithHandle) -> None:
    with fresh_api.client() as client:
        base = "/admin/entities/work_orders"
        updated = client.post(f"{base}/update", json={"n": 3, "seed": 4})
        assert updated.status_code == 200
        assert updated.json()["entity"] == "work_orders" and len(updated.json()["keys"]) == 3
        assert len(client.post(f"{base}/insert", json={"n": 2}).json()["keys"]) == 2
        deleted = client.post(f"{base}/delete", json={"n": 2, "seed": 1}).json()["keys"]
        rows = client.post(f"{base}/rows", json={"rows": [{"WO_NO": "WO-A1", "ITEM_NO": "ITM-Z"}]})
        assert rows.json()["keys"] == [["WO-A1"]]
        changed = client.post(
            f"{base}/update-keys", json={"keys": [["WO-A1"]], "changes": {"PRIORITY": 7}}
        )
        assert changed.json()["keys"] == [["WO-A1"]]
        gone = client.post(f"{base}/delete-keys", json={"keys": [["WO-A1"], ["WO-NOT-THERE"]]})
        assert gone.json()["keys"] == [["WO-A1"]]
        keys = {k[0] for k in read_keys(client, "work_orders")}
        assert "WO-A1" not in keys and not {k[0] for k in deleted} & keys
        for path, body, status in [
            (f"{base}/update", {"n": -1}, 400),
            (f"{base}/update", {"n": "x"}, 400),
            (f"{base}/rows", {"rows": [{"WO_NO": "WO-00000001"}]}, 400),
            (f"{base}/rows", {"rows": "x"}, 400),
            (f"{base}/nothing", {}, 404),
            ("/admin/entities/nothing/update", {"n": 1}, 404),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == status, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        assert client.post(f"{base}/update", content=b"{no json").status_code == 400
    response = httpx.post(f"{fresh_api.url}/admin/entities/work_orders/update", json={"n": 1})
    assert response.status_code == 401
