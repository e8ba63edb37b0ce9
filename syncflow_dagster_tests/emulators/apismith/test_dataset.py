"""The generated ERP: sizes, determinism, value forms, bad rows and the ground truth."""

import hashlib
import re
import subprocess
import sys
import unicodedata
from collections import Counter

import polars as pl
import pytest

from syncflow_dagster.emulators.apismith import (
    BAD_KINDS,
    ENTITIES,
    DatasetSpec,
    ErpDataset,
    MutationError,
)
from syncflow_dagster.emulators.apismith.dataset import SCN_BASE
from syncflow_dagster.emulators.apismith.schema import Column
from syncflow_dagster_tests.emulators.apismith import normalizer
from syncflow_dagster_tests.emulators.apismith.conftest import SPEC, served_rows

EXPECTED_COLUMNS = {
    "items": (
        ["ITEM_NO"],
        "ITEM_NO VARCHAR2(20), DESCRIPTION VARCHAR2(240), ITEM_TYPE VARCHAR2(10), UOM CHAR(3), "
        "STD_COST NUMBER(12,4), LEAD_TIME_DAYS NUMBER(5,0), ACTIVE_FLAG CHAR(1), "
        "CREATED_DATE DATE, "
        "LAST_UPDATE_TS TIMESTAMP WITH TIME ZONE, ORA_ROWSCN NUMBER(19,0)",
    ),
    "work_centers": (
        ["WC_CODE"],
        "WC_CODE VARCHAR2(10), WC_NAME VARCHAR2(80), DEPARTMENT VARCHAR2(30), "
        "CAPACITY_HRS NUMBER(7,2), EFFICIENCY_PCT NUMBER(5,2), SHIFT_COUNT NUMBER(1,0), "
        "ACTIVE_FLAG CHAR(1), ORA_ROWSCN NUMBER(19,0)",
    ),
    "work_orders": (
        ["WO_NO"],
        "WO_NO VARCHAR2(20), ITEM_NO VARCHAR2(20), ORDER_QTY NUMBER(12,3), "
        "COMPLETED_QTY NUMBER(12,3), STATUS VARCHAR2(12), PRIORITY NUMBER(3,0), START_DATE DATE, "
        "DUE_DATE DATE, RELEASED_TS TIMESTAMP WITH TIME ZONE, PLANNER_CODE CHAR(8), "
        "NOTES VARCHAR2(400), ORA_ROWSCN NUMBER(19,0)",
    ),
    "work_order_operations": (
        ["WO_NO", "OP_SEQ"],
        "WO_NO VARCHAR2(20), OP_SEQ NUMBER(4,0), WC_CODE VARCHAR2(10), OP_DESC VARCHAR2(80), "
        "SETUP_HRS NUMBER(7,2), RUN_HRS NUMBER(9,3), OP_STATUS VARCHAR2(10), SCHED_START DATE, "
        "SCHED_END DATE, ORA_ROWSCN NUMBER(19,0)",
    ),
}


def test_entities_are_the_erp_tables() -> None:
    assert list(ENTITIES) == list(EXPECTED_COLUMNS)
    for name, (key, columns) in EXPECTED_COLUMNS.items():
        described = ENTITIES[name].describe()
        assert described["key"] == key
        assert described["rowversion"] == "ORA_ROWSCN"
        cols = described["columns"]
        assert isinstance(cols, list)
        assert ", ".join(f"{c['name']} {c['type']}" for c in cols) == columns


def test_default_sizes() -> None:
    assert DatasetSpec(work_orders=100).n_items == 20
    assert DatasetSpec(work_orders=100_000).n_items == 5000
    assert DatasetSpec(work_orders=1000).n_work_centers == 5
    assert DatasetSpec(work_orders=50_000).n_work_centers == 50
    assert DatasetSpec(work_orders=10_000_000).n_work_centers == 200
    data = ErpDataset(DatasetSpec(work_orders=1000, bad_fraction=0))
    assert data.ground_truth("work_orders").height == 1000
    assert data.ground_truth("items").height == 50
    assert data.ground_truth("work_centers").height == 5
    ops = data.ground_truth("work_order_operations")
    per_order = ops.group_by("WO_NO").len()
    assert per_order["len"].max() <= 6
    assert 2.7 <= ops.height / 1000 <= 3.3
    none = ErpDataset(DatasetSpec(work_orders=1000, operations_per_order=0))
    assert none.ground_truth("work_order_operations").height == 0


def _digest(data: ErpDataset) -> str:
    digest = hashlib.sha256()
    for name in ENTITIES:
        view, keys = data.views(name)
        digest.update("\n".join(view.lines.to_list()).encode())
        digest.update("\n".join(keys.json.to_list()).encode())
    return digest.hexdigest()


def test_same_spec_same_data() -> None:
    spec = DatasetSpec(seed=3, work_orders=500, bad_fraction=0.05)
    first, second = ErpDataset(spec), ErpDataset(spec)
    assert _digest(first) == _digest(second)
    for name in ENTITIES:
        assert first.ground_truth(name).equals(second.ground_truth(name))
    assert _digest(first) != _digest(ErpDataset(DatasetSpec(seed=4, work_orders=500)))


def test_same_spec_same_data_in_another_process() -> None:
    code = (
        "from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset\n"
        "from syncflow_dagster_tests.emulators.apismith.test_dataset import _digest\n"
        "print(_digest(ErpDataset(DatasetSpec(seed=3, work_orders=500, bad_fraction=0.05))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(
        ErpDataset(DatasetSpec(seed=3, work_orders=500, bad_fraction=0.05))
    )


def test_rowversions_are_one_global_counter(dataset: ErpDataset) -> None:
    highest = 0
    for name, entity in ENTITIES.items():
        truth = dataset.ground_truth(name)
        assert truth["ORA_ROWSCN"].min() >= SCN_BASE
        highest = max(highest, truth["ORA_ROWSCN"].max())
        view, _ = dataset.views(name)
        positions = pl.DataFrame({"rv": view.rv, **{f"k{i}": k for i, k in enumerate(view.keys)}})
        assert not positions.is_duplicated().any(), f"{name}: (rowversion, key) repeats"
        assert view.rv.is_sorted()
        assert entity.key
    assert dataset.max_rowversion >= highest


# ------------------------------------------------------------------ ground truth


def _truth_by_position(data: ErpDataset, name: str) -> dict[tuple[object, ...], dict[str, object]]:
    """Ground-truth rows by (rowversion, raw key): what identifies a served record."""
    entity = ENTITIES[name]
    good = data.ground_truth(name).filter(pl.col("_bad").is_null()).iter_rows(named=True)
    positions = {(r["ORA_ROWSCN"], *(r[k] for k in entity.key)): r for r in good}
    for r in data.bad_rows(name).iter_rows(named=True):
        positions[(r["ORA_ROWSCN"], *(r[f"_k{i}"] for i in range(len(entity.key))))] = r
    return positions


@pytest.mark.parametrize("name", list(ENTITIES))
def test_good_rows_normalize_to_the_ground_truth(dataset: ErpDataset, name: str) -> None:
    entity = ENTITIES[name]
    truth = _truth_by_position(dataset, name)
    checked = 0
    for raw in served_rows(dataset, name):
        position = (raw["ORA_ROWSCN"], *(raw[k] for k in entity.key))
        expected = truth[position]
        if expected["_bad"] is not None:
            continue
        assert normalizer.row(entity, raw) == {c: expected[c] for c in entity.column_names}, raw
        checked += 1
    assert checked > 0.9 * len(truth)


def _detects(
    kind: str, entity_name: str, raw: dict[str, object], bad: dict[str, object], data: ErpDataset
) -> bool:
    entity = ENTITIES[entity_name]
    column = bad["_bad_column"]
    assert isinstance(column, str)
    col = entity.column(column)
    if kind in ("bad_number", "bad_date"):
        try:
            normalizer.value(col, raw[column])
        except normalizer.UnreadableError:
            return True
        return False
    if kind == "empty_key":
        return normalizer.value(col, raw[column]) is None
    if kind == "over_length":
        text = normalizer.value(col, raw[column])
        return isinstance(text, str) and len(text) > col.length
    if kind == "due_before_start":
        return normalizer.value(col, raw["DUE_DATE"]) < normalizer.value(col, raw["START_DATE"])  # type: ignore[operator]
    if kind in ("orphan", "parent_bad"):
        ref = next(r for r in entity.parents if column in r.columns)
        parent = data.ground_truth(ref.parent)
        key = ENTITIES[ref.parent].key[0]
        fk = normalizer.value(col, raw[column])
        present = parent.filter(pl.col(key) == fk)
        if kind == "orphan":
            return present.height == 0
        return present.height > 0 and present["_bad"].is_not_null().all()
    assert kind == "duplicate_key"
    return True


@pytest.mark.parametrize("name", list(ENTITIES))
def test_bad_rows_are_bad_as_recorded(dataset: ErpDataset, name: str) -> None:
    entity = ENTITIES[name]
    truth = _truth_by_position(dataset, name)
    raw_keys: Counter[tuple[object, ...]] = Counter()
    kinds: Counter[str] = Counter()
    for raw in served_rows(dataset, name):
        raw_keys[tuple(raw[k] for k in entity.key)] += 1
        bad = truth[(raw["ORA_ROWSCN"], *(raw[k] for k in entity.key))]
        kind = bad["_bad"]
        if kind is None:
            continue
        assert isinstance(kind, str)
        kinds[kind] += 1
        assert _detects(kind, name, raw, bad, dataset), (kind, raw)
    for key, count in raw_keys.items():
        if count > 1 and "" not in key and "   " not in key:
            assert kinds["duplicate_key"] > 0, key
    assert set(BAD_KINDS[name]) <= set(kinds), kinds


def test_bad_fraction_is_kept(dataset: ErpDataset) -> None:
    for name in ENTITIES:
        truth = dataset.ground_truth(name)
        duplicates = truth.filter(pl.col("_bad") == "duplicate_key").height
        generated = truth.height - duplicates
        bad = truth.filter(pl.col("_bad").is_not_null()).height
        expected = round(generated * SPEC.bad_fraction)
        assert bad == expected, name
        assert dataset.bad_rows(name).height == bad


def test_initial_children_name_good_parents() -> None:
    data = ErpDataset(DatasetSpec(seed=5, work_orders=2000, bad_fraction=0))
    for name in ENTITIES:
        assert data.ground_truth(name)["_bad"].null_count() == data.ground_truth(name).height


# ------------------------------------------------------------------ value forms

NUMBER_FORMS = {
    "plain": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) is not None,
    "padded": lambda v: isinstance(v, str) and re.fullmatch(r" -?\d+(\.\d+)? ", v) is not None,
    "thousands": lambda v: (
        isinstance(v, str) and re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", v) is not None
    ),
    "scientific": lambda v: (
        isinstance(v, str) and re.fullmatch(r"-?\d(\.\d+)?E-?\d+", v) is not None
    ),
    "leading_dot": lambda v: isinstance(v, str) and re.fullmatch(r"-?\.\d+", v) is not None,
    "negative_zero": lambda v: v == "-0",
    "empty": lambda v: v == "",
    "null": lambda v: v is None,
}
DATE_FORMS = {
    "DD-MON-RR": r"\d\d-[A-Z]{3}-\d\d",
    "DD-MON-YYYY": r"\d\d-[A-Z]{3}-\d{4}",
    "ISO date": r"\d{4}-\d\d-\d\d",
    "date time": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
    "ISO date time": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
    "YYYYMMDD": r"\d{8}",
    "empty": r"",
}
TSTZ_FORMS = {
    "oracle": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d\d:\d\d",
    "ISO offset": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d",
    "ISO Z": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",
}
TEXT_FORMS = {
    "plain": lambda v: v == v.strip() and unicodedata.is_normalized("NFC", v) and v.strip(),
    "leading spaces": lambda v: v.startswith(" "),
    "trailing spaces": lambda v: v.endswith(" "),
    "tabs": lambda v: "\t" in v and v.strip(),
    "non-breaking space": lambda v: "\u00a0" in v and v.strip(),
    "control characters": lambda v: any(
        unicodedata.category(c) == "Cc" and c not in "\t" for c in v
    ),
    "decomposed (NFD)": lambda v: not unicodedata.is_normalized("NFC", v),
    "whitespace only": lambda v: v != "" and not v.strip(),
    "empty": lambda v: v == "",
}
FLAG_FORMS = {"Y/N": "YN", "y/n": "yn", "1/0": "10", "T/F": "TF", "t/f": "tf"}


def _values(dataset: ErpDataset, kind: str) -> list[tuple[Column, object]]:
    out: list[tuple[Column, object]] = []
    for name, entity in ENTITIES.items():
        rows = served_rows(dataset, name)
        for col in entity.columns:
            if col.kind == kind and col.name not in entity.key and col.name != "ORA_ROWSCN":
                out.extend((col, row[col.name]) for row in rows)
    return out


def test_every_number_form_occurs_mostly_plain(dataset: ErpDataset) -> None:
    values = _values(dataset, "number")
    seen = Counter(form for _, v in values for form, test in NUMBER_FORMS.items() if test(v))
    assert set(seen) == set(NUMBER_FORMS), seen
    assert seen["plain"] > 0.8 * len(values)


def test_every_date_form_occurs(dataset: ErpDataset) -> None:
    values = [v for _, v in _values(dataset, "date") if isinstance(v, str)]
    seen = Counter(form for v in values for form, rx in DATE_FORMS.items() if re.fullmatch(rx, v))
    assert set(seen) == set(DATE_FORMS), seen
    assert any(v is None for _, v in _values(dataset, "date"))


def test_every_timestamp_form_occurs(dataset: ErpDataset) -> None:
    values = [v for _, v in _values(dataset, "tstz") if isinstance(v, str)]
    seen = Counter(form for v in values for form, rx in TSTZ_FORMS.items() if re.fullmatch(rx, v))
    assert set(seen) == set(TSTZ_FORMS), seen
    assert seen["oracle"] > 0.8 * len(values)
    assert sum(seen.values()) == len(values)


def test_every_text_form_occurs(dataset: ErpDataset) -> None:
    values = [v for _, v in _values(dataset, "varchar") if isinstance(v, str)]
    seen = Counter(form for v in values for form, test in TEXT_FORMS.items() if test(v))
    assert set(seen) == set(TEXT_FORMS), seen
    assert seen["plain"] > 0.8 * len(values)
    assert any(v is None for _, v in _values(dataset, "varchar"))


def test_chars_are_right_padded(dataset: ErpDataset) -> None:
    values = _values(dataset, "char")
    assert values
    for col, v in values:
        assert v is None or (isinstance(v, str) and len(v) == col.length), (col.name, v)
    assert any(isinstance(v, str) and v.endswith(" ") for _, v in values)


def test_every_flag_form_occurs(dataset: ErpDataset) -> None:
    values = [v for _, v in _values(dataset, "flag")]
    seen = {form for v in values for form, letters in FLAG_FORMS.items() if v in letters}
    assert seen == set(FLAG_FORMS)
    assert all(isinstance(v, str) and len(v) == 1 for v in values)


@pytest.mark.parametrize(
    "bad",
    [
        {"work_orders": -1},
        {"bad_fraction": 1.5},
        {"operations_per_order": -0.5},
        {"erp_timezone": "Mars/Olympus"},
        {"items": 0},
        {"work_centers": 0},
    ],
)
def test_impossible_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="DatasetSpec"):
        DatasetSpec(**bad)  # type: ignore[arg-type]


def test_children_need_parents_to_be_inserted() -> None:
    data = ErpDataset(DatasetSpec(work_orders=0, operations_per_order=0))
    assert data.ground_truth("work_orders").height == 0
    with pytest.raises(MutationError, match="no good parent"):
        data.insert("work_order_operations", 3)
    assert data.insert("work_orders", 2) == [("WO-00000001",), ("WO-00000002",)]
    assert len(data.insert("work_order_operations", 3)) == 3
