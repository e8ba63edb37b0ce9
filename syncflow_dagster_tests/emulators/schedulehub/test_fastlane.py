"""The fast lane answers exactly as the exact path, or leaves the batch to it untouched.

Two hubs reach the same state by the same history; then one takes the batch the
way the server does (the lane first, the exact path when the lane declines) and
the other strictly one record at a time (:func:`apply_sequential`, the
reference). Response bytes and final state — records, stored bytes and the
reverse parent index — must be equal, and a declined batch must leave the hub
as it was.
"""

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.apply import apply_batch, apply_sequential
from syncflow_dagster.emulators.schedulehub.batch import BatchError, parse_batch
from syncflow_dagster.emulators.schedulehub.fastlane import FastLane
from syncflow_dagster.emulators.schedulehub.render import ingest_response
from syncflow_dagster.emulators.schedulehub.schemas import EntitySchema, load_schemas
from syncflow_dagster.emulators.schedulehub.state import EntityState, data_of
from syncflow_dagster.emulators.schedulehub.store import HubStore
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS
from syncflow_dagster_tests.emulators.schedulehub.factories import write_schemas
from syncflow_dagster_tests.emulators.schedulehub.strategies import IDS, field_value
from syncflow_dagster_tests.emulators.schedulehub.test_apply import DEMO, NOW, new_hub, snapshot

LANES = {name: FastLane(schema) for name, schema in DEMO.items()}


@st.composite
def complete_record(
    draw: st.DrawFn, schema: EntitySchema, parent_entities: list[str], clean: bool = False
) -> Any:
    """An upsert naming every field of the schema (the shape SyncFlow sends), mostly valid.

    ``clean``: always a valid upsert (the lane's case), naming only the first
    parent id, which the tests store first.
    """
    rate = 1.0 if clean else draw(st.sampled_from([1.0, 1.0, 1.0, 0.9]))
    data = {spec.name: draw(field_value(spec, rate)) for spec in schema.fields}
    record: dict[str, Any] = {
        "external_id": draw(st.sampled_from(IDS[1:] if clean else IDS)),
        "op": "upsert" if clean else draw(st.sampled_from(["upsert"] * 9 + ["delete"])),
        "data": data,
        "data_hash": f"{draw(st.integers(0, 2)):064x}",
    }
    if parent_entities and draw(st.integers(0, 4)):
        ref = st.fixed_dictionaries(
            {
                "entity": st.sampled_from(parent_entities),
                "external_id": st.sampled_from(IDS[:1] if clean else IDS),
            }
        )
        record["parents"] = draw(st.lists(ref, min_size=1, max_size=2))
    return record


def serve(hub: dict[str, EntityState], entity: str, body: bytes) -> tuple[bytes | int, bool]:
    """Serve as the server does (lane, else exact path): answer, and whether the lane took it."""
    before = snapshot(hub)
    taken = LANES[entity].apply(hub, body, NOW)
    if taken is not None:
        return ingest_response(*taken), True
    assert snapshot(hub) == before, "a declined batch must leave the hub untouched"
    try:
        batch = parse_batch(body)
    except BatchError as exc:
        return exc.status, False
    return ingest_response(
        batch.batch_id, batch.ids, apply_batch(hub, DEMO[entity], batch, NOW)
    ), False


def reference(hub: dict[str, EntityState], entity: str, body: bytes) -> bytes | int:
    try:
        batch = parse_batch(body)
    except BatchError as exc:
        return exc.status
    return ingest_response(
        batch.batch_id, batch.ids, apply_sequential(hub, DEMO[entity], batch, NOW)
    )


def check(history: list[tuple[str, bytes]], entity: str, body: bytes) -> bool:
    hubs = [new_hub(DEMO), new_hub(DEMO)]
    for past_entity, past in history:
        for hub in hubs:
            reference(hub, past_entity, past)
    served, taken = serve(hubs[0], entity, body)
    assert served == reference(hubs[1], entity, body)
    assert snapshot(hubs[0]) == snapshot(hubs[1])
    return taken


def body_of(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"batch_id": "b", "records": records})


ORDER = {
    "order_no": "W1",
    "item_no": "I1",
    "quantity": 5,
    "completed_quantity": None,
    "status": "open",
    "priority": 1,
    "start_date": "2024-02-28",
    "due_date": None,
    "released_at": "2024-02-28T10:00:00+01:00",
    "planner": "ann",
    "notes": None,
}
ITEM = {"item_no": "I1", "item_type": "make", "uom": "EA", "is_active": True}
ITEM_BODY = body_of([{"external_id": IDS[0], "op": "upsert", "data": ITEM, "data_hash": "0" * 64}])


def draw_case(data: st.DataObject, clean: bool) -> tuple[list[tuple[str, bytes]], str, bytes]:
    """A history (items, then work orders for operations) and a batch for one entity."""
    items = data.draw(st.lists(complete_record(DEMO["items"], []), max_size=4))
    first_item = {"external_id": IDS[0], "op": "upsert", "data": ITEM, "data_hash": "0" * 64}
    history = [("items", body_of([first_item] if clean else items))]
    entity = data.draw(st.sampled_from(["items", "work_orders", "operations"]))
    # "items" is no parent of an operation: the hub rejects those (outside a clean batch).
    others = [] if clean else ["items"]
    parents = {"items": [], "work_orders": ["items"], "operations": ["work_orders", *others]}
    if entity == "operations":
        orders = complete_record(DEMO["work_orders"], ["items"], clean)
        history.append(("work_orders", body_of(data.draw(st.lists(orders, max_size=4)))))
    if clean and entity == "operations":
        order = {"external_id": IDS[0], "op": "upsert", "data": ORDER, "data_hash": "0" * 64}
        history.append(("work_orders", body_of([order])))
    unique = clean or data.draw(st.booleans())
    records = data.draw(
        st.lists(
            complete_record(DEMO[entity], parents[entity], clean),
            min_size=1 if clean else 0,
            max_size=6,
            unique_by=(lambda r: r["external_id"]) if unique else None,
        )
    )
    return history, entity, body_of(records)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_lane_equals_reference(data: st.DataObject) -> None:
    event(f"lane took the batch: {check(*draw_case(data, clean=False))}")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_lane_equals_reference_on_clean_batches(data: st.DataObject) -> None:
    event(f"lane took the batch: {check(*draw_case(data, clean=True))}")


def order_body(data_json: bytes, parent: str = IDS[0]) -> bytes:
    """A one-record work_orders body with the data given as raw JSON text."""
    return (
        b'{"batch_id":"b","records":[{"external_id":"' + IDS[1].encode() + b'","op":"upsert",'
        b'"data_hash":"'
        + b"1" * 64
        + b'","parents":[{"entity":"items","external_id":"'
        + parent.encode()
        + b'"}],"data":'
        + data_json
        + b"}]}"
    )


def with_raw(**fields: bytes) -> bytes:
    """ORDER as JSON text with some values replaced by raw JSON text."""
    text = orjson.dumps(ORDER)
    for name, raw in fields.items():
        old = b'"' + name.encode() + b'":' + orjson.dumps(ORDER[name])
        assert old in text
        text = text.replace(old, b'"' + name.encode() + b'":' + raw)
    return text


@pytest.mark.parametrize(
    ("data_json", "taken"),
    [
        (with_raw(), True),
        (with_raw(quantity=b"1.5E3"), True),
        (with_raw(quantity=b"-0.0"), True),
        (with_raw(quantity=b"1e-400"), True),
        (with_raw(quantity=b"5.0"), True),
        (with_raw(quantity=b"18446744073709551615"), True),
        (with_raw(quantity=b"99999999999999999999999"), False),  # beyond 64 bits: a float
        (with_raw(priority=b"99999999999999999999999"), False),
        (with_raw(priority=b"-9223372036854775809"), False),
        (with_raw(quantity=b"1e400"), False),
        (with_raw(priority=b"1.0"), False),
        (with_raw(priority=b"true"), False),
        (with_raw(planner=b'"a\\u0000\\u00e9\\ud83d\\ude00"'), True),
        (with_raw(planner=b'"\\ud800"'), False),
        (with_raw(notes=b'"x],[y"'), True),
        (with_raw(start_date=b'"2024-02-30"'), False),
        (with_raw(start_date=b'"2024-2-28"'), False),
        (with_raw(start_date=b'"20240228"'), False),
        (with_raw(start_date=b'"0000-01-01"'), False),
        (with_raw(released_at=b'"2024-02-28T10:00:00"'), False),  # no offset
        (with_raw(released_at=b'"2024-02-28T10:00Z"'), True),
        (with_raw(status=b"null"), False),
        (orjson.dumps({**ORDER, "colour": "red"}), False),
        (orjson.dumps({k: v for k, v in ORDER.items() if k != "notes"}), False),
        (with_raw()[:-1] + b',"planner":"bob"}', True),  # a repeated key: the last wins
    ],
)
def test_values_round_trip_as_the_exact_path_stores_them(data_json: bytes, taken: bool) -> None:
    assert check([("items", ITEM_BODY)], "work_orders", order_body(data_json)) is taken


@pytest.mark.parametrize(
    "body",
    [
        order_body(with_raw(), parent=IDS[2]),  # a missing parent
        order_body(with_raw()).replace(b'"entity":"items"', b'"entity":"work_centers"'),
        order_body(with_raw()).replace(b'"op":"upsert"', b'"op":"UPSERT"'),
        order_body(with_raw()).replace(b'"batch_id":"b"', b'"batch_id":7'),
        order_body(with_raw()).replace(b'"parents":[', b'"parents":null,"x":['),
        order_body(with_raw()).replace(IDS[1].encode(), b"A" * 32),
        order_body(with_raw()).replace(b"1" * 64, b"1" * 63),
        b'{"batch_id":"b","records":[]}',
        b'{"batch_id":"b","records":' + orjson.dumps([{}] * 1001) + b"}",
        b"not json",
    ],
)
def test_the_lane_declines_what_it_does_not_cover(body: bytes) -> None:
    assert check([("items", ITEM_BODY)], "work_orders", body) is False


def test_a_stored_id_or_a_repeated_id_leaves_the_lane() -> None:
    body = order_body(with_raw())
    assert check([("items", ITEM_BODY), ("work_orders", body)], "work_orders", body) is False
    record = orjson.loads(body)["records"][0]
    assert check([("items", ITEM_BODY)], "work_orders", body_of([record, record])) is False


def test_an_entity_that_may_be_its_own_parent_has_no_lane(tmp_path: Path) -> None:
    schemas = load_schemas(write_schemas(tmp_path))
    hub = new_hub(schemas)
    body = body_of(
        [
            {
                "external_id": IDS[0],
                "op": "upsert",
                "data": {"title": "t", "hours": 1},
                "data_hash": "0" * 64,
            }
        ]
    )
    assert FastLane(schemas["tasks"]).apply(hub, body, NOW) is None
    assert FastLane(schemas["items"]).enabled


def test_a_thousand_fresh_orders_take_the_lane_and_share_their_strings() -> None:
    hub = new_hub(DEMO)
    reference(hub, "items", ITEM_BODY)
    records = [
        {
            "external_id": f"{i + 100:032x}",
            "op": "upsert",
            "data": {**ORDER, "order_no": f"W{i}", "quantity": i / 4},
            "data_hash": f"{i:064x}",
            "parents": [{"entity": "items", "external_id": IDS[0]}],
        }
        for i in range(1000)
    ]
    taken = LANES["work_orders"].apply(hub, body_of(records), NOW)
    assert taken is not None
    batch_id, ids, outcome = taken
    assert batch_id == "b" and list(ids) == [r["external_id"] for r in records]
    assert outcome.statuses == ["created"] * 1000
    rows = hub["work_orders"].rows
    assert data_of(rows[f"{105:032x}"]) == records[5]["data"]
    assert hub["items"].child_count(IDS[0]) == 1000
    first, last = rows[f"{100:032x}"], rows[f"{1099:032x}"]
    assert first[2] is last[2]  # one names tuple
    assert first[4] is last[4] is DEMO["work_orders"].parents[0]  # one entity string


def test_the_store_journals_what_the_lane_wrote(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = HubStore(DEMO, db)
    store.ingest("items", parse_batch(ITEM_BODY))
    taken = store.ingest_fast("work_orders", order_body(with_raw()))
    assert taken is not None
    expected = store.records("work_orders")
    store.close()
    again = HubStore(DEMO, db)
    assert again.records("work_orders") == expected
    assert expected[0]["data"] == ORDER
    assert again.children("items", IDS[0]) == 1
    again.close()


def test_schemas_file_is_the_demo() -> None:
    assert DEMO.keys() == {"items", "work_centers", "work_orders", "operations"}
    assert SCHEDULEHUB_SCHEMAS.exists()
