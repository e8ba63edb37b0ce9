"""Reading ingest bodies: the fast reader equals the reference reader whenever it answers."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.batch import (
    Batch,
    BatchError,
    parse_batch,
    read_records,
    read_records_fast,
)
from syncflow_dagster.emulators.schedulehub.schemas import load_schemas
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS
from syncflow_dagster_tests.emulators.schedulehub.strategies import (
    HASHES,
    IDS,
    ingest_record,
    json_values,
)

SCHEMA = load_schemas(SCHEDULEHUB_SCHEMAS)["work_orders"]
KEYS = ["external_id", "op", "data", "data_hash", "parents"]


def columns(batch: Batch) -> tuple[Any, ...]:
    return (
        batch.batch_id,
        list(batch.ids),
        list(batch.ops),
        list(batch.datas),
        list(batch.hashes),
        list(batch.ref_entities),
        list(batch.ref_ids),
        batch.ref_counts if isinstance(batch.ref_counts, int) else list(batch.ref_counts),
        batch.parents,
    )


@st.composite
def mutated(draw: st.DrawFn, record: dict[str, Any]) -> Any:
    """A record, possibly broken in one place the wire rules care about."""
    kind = draw(st.integers(0, 12))
    record = dict(record)
    if kind == 0:
        record.pop(draw(st.sampled_from(KEYS)), None)
    elif kind == 1:
        record[draw(st.sampled_from(KEYS))] = draw(json_values)
    elif kind == 2:
        record["external_id"] = draw(
            st.sampled_from(["A" * 32, "a" * 31, " " + "a" * 31, "g" * 32])
        )
    elif kind == 3:
        record["data_hash"] = draw(
            st.sampled_from(["0" * 63, "0" * 63 + "\n", "F" * 64, HASHES[0]])
        )
    elif kind == 4:
        record["parents"] = [
            draw(
                st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {"entity": json_values, "external_id": st.sampled_from([*IDS, "x"])}
                    ),
                )
            )
        ]
    elif kind == 5:
        return draw(json_values)
    elif kind == 6:
        record["extra"] = 1  # allowed
    return record


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast_reader_equals_reference(data: st.DataObject) -> None:
    plain = data.draw(st.lists(ingest_record(SCHEMA, ["items", "tasks"]), max_size=6))
    records = [data.draw(mutated(r)) for r in plain] if data.draw(st.booleans()) else plain
    records = orjson.loads(orjson.dumps(records))  # what the server sees
    try:
        expected = columns(read_records("b", records))
    except BatchError as exc:
        expected = exc
    fast = read_records_fast("b", records)
    if fast is not None:
        assert not isinstance(expected, BatchError), expected.detail
        assert columns(fast) == expected
    body = orjson.dumps({"batch_id": "b", "records": records})
    try:
        parsed: Any = columns(parse_batch(body))
    except BatchError as exc:
        parsed = exc
    if isinstance(expected, BatchError):
        assert isinstance(parsed, BatchError) and parsed.status == 422
        assert parsed.detail == expected.detail
    else:
        assert parsed == expected


def test_fast_reader_handles_the_common_shapes() -> None:
    item = {"entity": "items", "external_id": IDS[0]}
    one = [
        {"external_id": i, "op": "upsert", "data": {}, "data_hash": HASHES[0], "parents": [item]}
        for i in IDS
    ]
    none = [{"external_id": i, "op": "upsert", "data": {}, "data_hash": HASHES[0]} for i in IDS]
    deletes = [{"external_id": i, "op": "delete"} for i in IDS]
    for records in (one, none, deletes, one + deletes):
        fast = read_records_fast("b", records)
        assert fast is not None
        assert columns(fast) == columns(read_records("b", records))


@pytest.mark.parametrize("key", ["external_id", "op", "data", "data_hash", "parents"])
@pytest.mark.parametrize("op", ["upsert", "delete"])
def test_null_is_not_absent(key: str, op: str) -> None:
    record = {"external_id": IDS[0], "op": op, "data": {}, "data_hash": HASHES[0], "parents": []}
    good = dict(record, external_id=IDS[1])
    with pytest.raises(BatchError) as caught:
        parse_batch(orjson.dumps({"batch_id": "b", "records": [good, {**record, key: None}]}))
    assert caught.value.status == 422 and f"records[1].{key}" in caught.value.detail
    assert read_records_fast("b", [good, {**record, key: None}]) is None


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"", 422, "not valid JSON"),
        (b"[]", 422, "JSON object"),
        (b'{"records": []}', 422, "batch_id is required"),
        (b'{"batch_id": null, "records": []}', 422, "batch_id must be a string"),
        (b'{"batch_id": "b"}', 422, "records is required"),
        (b'{"batch_id": "b", "records": null}', 422, "records must be an array"),
        (b'{"records": [' + b",".join([b"{}"] * 1001) + b"]}", 413, "at most 1000"),
    ],
)
def test_whole_body_rules(body: bytes, status: int, detail: str) -> None:
    with pytest.raises(BatchError) as caught:
        parse_batch(body)
    assert caught.value.status == status and detail in caught.value.detail
