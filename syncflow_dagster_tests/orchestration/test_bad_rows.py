"""Bad input is data: dead letters with stage, code, detail and every form; good rows arrive."""

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster_tests.orchestration.conftest import (
    MakeHarness,
    SyncHarness,
    edited_entities,
    target_field,
)

BAD = DatasetSpec(seed=13, work_orders=800, bad_fraction=0.05)
KIND_CODES = {
    "bad_number": ("normalize", "number_unreadable"),
    "bad_date": ("normalize", "date_invalid"),
    "over_length": ("normalize", "string_too_long"),
    "empty_key": ("validate", "key_missing"),
    "duplicate_key": ("validate", "duplicate_key"),
    "due_before_start": ("validate", "date_order"),
}
"""Each kind of bad ERP row: the stage that catches it and the code it gets."""


def json_of(text: str | None) -> Any:
    assert text is not None
    return orjson.loads(text)


def check_forms(letter: dict[str, Any], key: list[str]) -> None:
    """A dead letter carries code, detail, raw form, and the forms its stage reached."""
    assert letter["code"] and letter["detail"]
    assert letter["status"] == "open"
    raw = json_of(letter["raw"])
    assert isinstance(raw, dict) and set(key) <= set(raw)
    assert all(v is None or isinstance(v, str) for v in raw.values())  # as fetched: text
    assert set(json_of(letter["source_key"])) == set(key)
    assert letter["rowversion"] is not None
    if letter["stage"] == "normalize":
        assert letter["normalized"] is None and letter["mapped"] is None
    elif letter["stage"] == "validate":
        assert set(key) <= set(json_of(letter["normalized"]))
        assert letter["mapped"] is None
    else:
        assert json_of(letter["normalized"]) and json_of(letter["mapped"])


def letters(h: SyncHarness, entity: str) -> pl.DataFrame:
    return h.store.list_failed(entity, limit=100_000)


def test_bad_rows_are_dead_lettered_and_every_good_row_arrives(make_harness: MakeHarness) -> None:
    h = make_harness(BAD)
    batches = h.sync_parent_first()
    check = h.reconcile()
    assert check.ok, check.problems

    for entity in h.entities:
        truth = h.api.dataset.ground_truth(entity)
        kinds = Counter(k for k in truth.get_column("_bad").to_list() if k is not None)
        batch = batches[entity]
        assert batch["status"] == "succeeded"
        dead = letters(h, entity)
        expected = Counter(KIND_CODES[k] for k in kinds.elements() if k in KIND_CODES)
        assert Counter(zip(dead["stage"], dead["code"], strict=True)) == expected, entity
        assert batch["dead_lettered"] == dead.height == sum(expected.values())
        assert batch["normalize_failed"] == dead.filter(pl.col("stage") == "normalize").height
        assert batch["validation_failed"] == dead.filter(pl.col("stage") == "validate").height
        # Children naming a parent the ERP lacks wait for it instead.
        assert batch["pending_children"] == kinds["orphan"] == h.store.count_pending(entity)
        key = list(h.catalog[entity].source.key)
        for letter in dead.iter_rows(named=True):
            assert letter["batch_id"] == batch["id"] and letter["entity"] == entity
            check_forms(letter, key)

    # Each unreadable value is named with its column and its raw text.
    bad = h.api.dataset.bad_rows("work_orders").filter(
        pl.col("_bad").is_in(["bad_number", "bad_date", "over_length"])
    )
    column_of = dict(zip(bad.get_column("_k0"), bad.get_column("_bad_column"), strict=True))
    normalize = letters(h, "work_orders").filter(pl.col("stage") == "normalize")
    assert normalize.height == len(column_of) > 0
    for letter in normalize.iter_rows(named=True):
        wo = json_of(letter["source_key"])["WO_NO"]
        column = column_of[wo]
        assert letter["detail"].startswith(f"{column}:"), letter["detail"]
        assert str(json_of(letter["raw"])[column]).strip()[:20] in letter["detail"]


def test_records_failing_the_mapping_carry_their_normalized_and_mapped_forms(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    def strict_status(raw: dict[str, Any]) -> None:
        status = target_field(raw, "status")
        status["value_map"] = {"FIRM": "FIRM_PLANNED", "PLANNED": "PLANNED", "RELEASED": "RELEASED"}
        status["strict_value_map"] = True

    spec = DatasetSpec(seed=17, work_orders=400, bad_fraction=0.0)
    h = make_harness(spec, entities_dir=edited_entities(tmp_path, "work_orders", strict_status))
    batches = h.sync_parent_first()
    check = h.reconcile()  # the expectation maps with the same configuration
    assert check.ok, check.problems

    closed = h.api.dataset.ground_truth("work_orders").filter(pl.col("STATUS") == "CLOSED")
    assert closed.height > 0
    batch = batches["work_orders"]
    assert batch["map_failed"] == batch["dead_lettered"] == closed.height
    dead = letters(h, "work_orders")
    assert set(dead.get_column("stage")) == {"map"}
    assert set(dead.get_column("code")) == {"unmapped_value"}
    assert sorted(json_of(k)["WO_NO"] for k in dead.get_column("source_key")) == sorted(
        closed.get_column("WO_NO")
    )
    for letter in dead.iter_rows(named=True):
        check_forms(letter, ["WO_NO"])
        assert "status" in letter["detail"] and "CLOSED" in letter["detail"]
        assert json_of(letter["normalized"])["STATUS"] == "CLOSED"
        mapped = json_of(letter["mapped"])
        assert {f["name"] for f in h.catalog["work_orders"].target.model_dump()["fields"]} <= set(
            mapped
        )
    # Their operations wait for a parent that will not arrive until the ERP fixes it.
    ops_of_closed = h.api.dataset.ground_truth("work_order_operations").filter(
        pl.col("WO_NO").is_in(closed.get_column("WO_NO").implode())
    )
    assert batches["work_order_operations"]["pending_children"] == ops_of_closed.height


def test_dead_letters_are_not_duplicated_by_reruns_and_close_when_the_record_recovers(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(BAD)
    h.sync_parent_first(mode="full")
    first = letters(h, "work_orders")
    assert first.height > 0 and first["bk_hash"].null_count() < first.height  # keys readable
    h.sync_parent_first(mode="full")
    now_open = letters(h, "work_orders")
    assert now_open.height == first.height  # the same bad records, dead-lettered once
    closed = h.store.list_failed("work_orders", status="resolved", limit=100_000)
    assert closed.height == first.height
    assert closed["resolution"].str.starts_with("superseded").all()

    # Repair one record with an unreadable number in the ERP: its letter closes.
    bad = h.api.dataset.bad_rows("work_orders").filter(pl.col("_bad") == "bad_number").head(1)
    h.api.dataset.update_keys("work_orders", [[bad.item(0, "_k0")]])
    h.run_entity("work_orders")
    recovered = h.store.list_failed("work_orders", status="resolved", limit=100_000).filter(
        pl.col("resolution").str.starts_with("recovered")
    )
    assert recovered.height == 1
    assert json_of(recovered.item(0, "source_key"))["WO_NO"] == bad.item(0, "_k0")
    assert letters(h, "work_orders").height == first.height - 1
    assert h.reconcile().ok
