"""Bulk application equals one-by-one application, on random states and batches.

Two hubs reach the same state by the same history; then one applies a batch the
way the server does (:func:`apply_batch`: in bulk when the records are
independent) and the other strictly one by one (:func:`apply_sequential`, the
reference). Statuses, rejections, net changes and the final state — records and
the reverse parent index — must be equal.
"""

import zlib
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.apply import (
    Outcome,
    apply_batch,
    apply_bulk,
    apply_sequential,
    independent,
)
from syncflow_dagster.emulators.schedulehub.batch import BatchError, parse_batch
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema, load_schemas
from syncflow_dagster.emulators.schedulehub.state import EntityState, data_of
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS
from syncflow_dagster_tests.emulators.schedulehub.strategies import IDS, batches

SELF_PARENT = """
entities:
  - name: items
    parents: []
    fields:
      - {name: item_no, type: string, required: true}
  - name: notes
    parents: []
    fields:
      - {name: text, type: string, required: false}
  - name: tasks
    parents: [tasks, items]
    fields:
      - {name: title, type: string, required: true}
      - {name: hours, type: number, required: false}
      - {name: due, type: date, required: false}
"""

NOW = "2024-01-01T00:00:00.000000Z"


def _schemas(tmp: Path) -> dict[str, EntitySchema]:
    path = tmp / "self_parent.yaml"
    if not path.exists():
        path.write_text(SELF_PARENT)
    return load_schemas(path)


DEMO = load_schemas(SCHEDULEHUB_SCHEMAS)


def new_hub(schemas: dict[str, EntitySchema]) -> dict[str, EntityState]:
    return {name: EntityState(name) for name in schemas}


def snapshot(hub: dict[str, EntityState]) -> dict[str, Any]:
    return {
        name: (dict(state.rows), {i: state.child_count(i) for i in IDS if state.child_count(i)})
        for name, state in hub.items()
    }


def summary(outcome: Outcome) -> tuple[Any, ...]:
    return (
        outcome.statuses,
        outcome.errors,
        dict(zip(outcome.written_ids, outcome.written_rows, strict=True)),
        sorted(outcome.deleted),
    )


def run(
    schemas: dict[str, EntitySchema],
    history: list[tuple[str, list[dict[str, Any]]]],
    entity: str,
    records: list[dict[str, Any]],
) -> None:
    hubs = [new_hub(schemas), new_hub(schemas)]
    for hub in hubs:
        for past_entity, past in history:
            apply_sequential(hub, schemas[past_entity], _batch(past), NOW)
    assert snapshot(hubs[0]) == snapshot(hubs[1])
    try:
        batch = _batch(records)
    except BatchError:
        return
    schema = schemas[entity]
    bulk_possible = independent(hubs[0], schema, batch)
    served = apply_batch(hubs[0], schema, batch, NOW)
    reference = apply_sequential(hubs[1], schema, _batch(records), NOW)
    assert summary(served) == summary(reference)
    assert snapshot(hubs[0]) == snapshot(hubs[1])
    if bulk_possible:  # and once more through apply_bulk by name, from the same start
        again = [new_hub(schemas)]
        for past_entity, past in history:
            apply_sequential(again[0], schemas[past_entity], _batch(past), NOW)
        assert summary(apply_bulk(again[0], schema, _batch(records), NOW)) == summary(reference)
        assert snapshot(again[0]) == snapshot(hubs[1])


def _batch(records: list[dict[str, Any]]) -> Any:
    return parse_batch(orjson.dumps({"batch_id": "b", "records": records}))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bulk_equals_sequential_self_parent(data: st.DataObject, tmp_path_factory: Any) -> None:
    schemas = _schemas(tmp_path_factory.getbasetemp())
    parents = ["tasks", "items", "notes"]
    history = [("items", data.draw(batches(schemas["items"], [], max_size=4)))]
    history += [
        ("tasks", b) for b in data.draw(st.lists(batches(schemas["tasks"], parents), max_size=3))
    ]
    run(schemas, history, "tasks", data.draw(batches(schemas["tasks"], parents)))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bulk_equals_sequential_demo(data: st.DataObject) -> None:
    history = [("items", data.draw(batches(DEMO["items"], [], max_size=5)))]
    history += [
        ("work_orders", b)
        for b in data.draw(
            st.lists(batches(DEMO["work_orders"], ["items", "operations"]), max_size=2)
        )
    ]
    entity = data.draw(st.sampled_from(["items", "work_orders"]))
    parents = [] if entity == "items" else ["items", "work_centers"]
    run(DEMO, history, entity, data.draw(batches(DEMO[entity], parents, max_size=10)))


def test_bulk_handles_a_thousand_fresh_upserts() -> None:
    hub = new_hub(DEMO)
    items = [
        {
            "external_id": f"{i:032x}",
            "op": "upsert",
            "data_hash": "0" * 64,
            "data": {"item_no": f"I{i}", "item_type": "make", "uom": "EA", "is_active": True},
        }
        for i in range(1, 11)
    ]
    apply_batch(hub, DEMO["items"], _batch(items), NOW)
    orders = [
        {
            "external_id": f"{i:032x}",
            "op": "upsert",
            "data_hash": "1" * 64,
            "data": {
                "order_no": f"W{i}",
                "item_no": "I",
                "quantity": i,
                "status": "open",
                "notes": 'a "},{" b',
            },
            "parents": [{"entity": "items", "external_id": f"{i % 10 + 1:032x}"}],
        }
        for i in range(1000)
    ]
    batch = _batch(orders)
    assert independent(hub, DEMO["work_orders"], batch)
    outcome = apply_batch(hub, DEMO["work_orders"], batch, NOW)
    assert outcome.statuses == ["created"] * 1000
    assert hub["items"].child_count(f"{1:032x}") == 100
    stored = hub["work_orders"].rows[f"{5:032x}"]
    assert data_of(stored) == orders[5]["data"]
    assert stored[2] == ("order_no", "item_no", "quantity", "status", "notes")  # schema order


def _task(external_id: str, parents: list[str], title: str = "t") -> dict[str, Any]:
    return {
        "external_id": external_id,
        "op": "upsert",
        "data": {"title": title},
        "data_hash": f"{zlib.crc32(title.encode()):064x}",
        "parents": [{"entity": "tasks", "external_id": p} for p in parents],
    }


def test_reparent_then_delete_the_old_parent(tmp_path: Path) -> None:
    """Only in request order does the delete find its former child gone."""
    schemas = _schemas(tmp_path)
    a, b = IDS[0], IDS[1]
    history = [("tasks", [_task(a, []), _task(b, [a])])]
    batch = [_task(b, [], "moved"), {"external_id": a, "op": "delete"}]
    run(schemas, history, "tasks", batch)
    hub = new_hub(schemas)
    apply_sequential(hub, schemas["tasks"], _batch(history[0][1]), NOW)
    assert apply_batch(hub, schemas["tasks"], _batch(batch), NOW).statuses == ["updated", "deleted"]


def test_child_then_parent_in_one_batch(tmp_path: Path) -> None:
    schemas = _schemas(tmp_path)
    a, b = IDS[0], IDS[1]
    batch = [_task(a, []), _task(b, [a]), {"external_id": a, "op": "delete"}]
    run(schemas, [], "tasks", batch)
    hub = new_hub(schemas)
    outcome = apply_batch(hub, schemas["tasks"], _batch(batch), NOW)
    assert outcome.statuses == ["created", "created", "rejected"]
    assert outcome.errors[2][0] == "has_children"
    reverse = [_task(b, [a]), _task(a, [])]
    assert apply_batch(new_hub(schemas), schemas["tasks"], _batch(reverse), NOW).statuses == [
        "rejected",
        "created",
    ]
