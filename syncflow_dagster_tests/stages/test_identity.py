"""BK_HASH and DATA_HASH: golden vectors, reference equality, properties, errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from syncflow_dagster.stages.identity import (
    bk_hash_expr,
    data_hash_expr,
    with_bk_hash,
    with_data_hash,
    with_identity,
)
from syncflow_dagster_tests.stages import identity_reference as ref

GOLDEN = json.loads(Path(__file__).with_name("identity_golden.json").read_text(encoding="utf-8"))
BK_HEX = re.compile(r"^[0-9a-f]{32}$")
DATA_HEX = re.compile(r"^[0-9a-f]{64}$")
UTC = dt.UTC


def polars_dtype(name: str) -> pl.DataType:
    match = re.fullmatch(r"Datetime\((\w+), (.+)\)", name)
    if match:
        return pl.Datetime(match[1], match[2])  # type: ignore[arg-type]
    dtype = getattr(pl, name)
    return dtype() if isinstance(dtype, type) else dtype


def column(name: str, dtype_name: str, values: list[Any]) -> pl.Series:
    """A typed column from golden/hypothesis values (ISO strings for dates and datetimes)."""
    dtype = polars_dtype(dtype_name)
    if dtype == pl.Date:
        values = [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in values]
    if isinstance(dtype, pl.Datetime):
        values = [dt.datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
        utc = pl.Series(name, values, dtype=pl.Datetime(dtype.time_unit, "UTC"))
        return utc.dt.convert_time_zone(dtype.time_zone or "UTC")
    return pl.Series(name, values, dtype=dtype)


# --- golden vectors: pinned hex == vectorized == pure-Python reference -------------------


@pytest.mark.parametrize("case", GOLDEN["bk_hash"], ids=lambda case: case["comment"])
def test_bk_hash_golden(case: dict[str, Any]) -> None:
    key = [(dtype, value) for dtype, value in case["key"]]
    names = [f"k{i}" for i in range(len(key))]
    frame = pl.DataFrame([column(n, d, [v]) for n, (d, v) in zip(names, key, strict=True)])

    vectorized = with_bk_hash(frame, case["entity"], names)["bk_hash"].item()

    assert ref.bk_canonical(case["entity"], key) == case["canonical"]
    assert ref.bk_hash(case["entity"], key) == case["hash"]
    assert vectorized == case["hash"]


@pytest.mark.parametrize("case", GOLDEN["data_hash"], ids=lambda case: case["comment"])
def test_data_hash_golden(case: dict[str, Any]) -> None:
    fields = [(name, dtype, value) for name, dtype, value in case["fields"]]
    frame = pl.DataFrame([column(n, d, [v]) for n, d, v in fields])

    vectorized = with_data_hash(frame, [name for name, _, _ in fields])["data_hash"].item()

    assert ref.data_canonical(fields) == case["canonical"]
    assert ref.data_hash(fields) == case["hash"]
    assert vectorized == case["hash"]


def test_golden_table_covers_the_brief() -> None:
    assert len(GOLDEN["bk_hash"]) + len(GOLDEN["data_hash"]) >= 30
    assert any(case["hash"].startswith("000") for case in GOLDEN["bk_hash"])
    by_comment = {case["comment"]: case["hash"] for case in GOLDEN["data_hash"]}
    assert by_comment["-0.0: same as 0.0"] == by_comment["0.0"]
    assert by_comment["empty string"] != by_comment["null: differs from empty string"]


def test_golden_vectors_in_one_frame_per_entity() -> None:
    """Rows are hashed independently: a multi-row frame gives each row its own vector."""
    cases = [case for case in GOLDEN["bk_hash"] if case["key"][0][0] == "String"]
    cases = [case for case in cases if len(case["key"]) == 1 and case["entity"] == "item"]
    frame = pl.DataFrame({"k": [case["key"][0][1] for case in cases]})
    assert with_bk_hash(frame, "item", ["k"])["bk_hash"].to_list() == [c["hash"] for c in cases]


# --- random frames: vectorized == reference ----------------------------------------------

NORMALIZED_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=12
)  # normalized strings carry no control characters
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "String": NORMALIZED_TEXT,
    "Int64": st.integers(-(2**63), 2**63 - 1),
    "UInt32": st.integers(0, 2**32 - 1),
    "Float64": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(),
    "Date": st.dates(),
    "Datetime(us, UTC)": st.datetimes(timezones=st.just(UTC)),
}
FIELD_NAME = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=8
)


@st.composite
def typed_frames(
    draw: st.DrawFn, *, nullable: bool
) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """Columns as (name, dtype) and rows of values."""
    names = draw(st.lists(FIELD_NAME, min_size=1, max_size=5, unique=True))
    dtypes = [draw(st.sampled_from(sorted(VALUES))) for _ in names]
    row = st.tuples(*(VALUES[d] | st.none() if nullable else VALUES[d] for d in dtypes)).map(list)
    rows = draw(st.lists(row, min_size=1, max_size=6))
    return list(zip(names, dtypes, strict=True)), rows


def build(columns: list[tuple[str, str]], rows: list[list[Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        [column(name, dtype, [r[i] for r in rows]) for i, (name, dtype) in enumerate(columns)]
    )


@settings(max_examples=150, deadline=None)
@given(typed_frames(nullable=True))
def test_data_hash_matches_reference_on_random_frames(drawn: Any) -> None:
    columns, rows = drawn
    hashes = with_data_hash(build(columns, rows), [name for name, _ in columns])["data_hash"]
    expected = [
        ref.data_hash([(n, d, v) for (n, d), v in zip(columns, row, strict=True)]) for row in rows
    ]
    assert hashes.to_list() == expected


@settings(max_examples=150, deadline=None)
@given(typed_frames(nullable=False), FIELD_NAME)
def test_bk_hash_matches_reference_on_random_frames(drawn: Any, entity: str) -> None:
    columns, rows = drawn
    hashes = with_bk_hash(build(columns, rows), entity, [name for name, _ in columns])["bk_hash"]
    expected = [
        ref.bk_hash(entity, [(d, v) for (_, d), v in zip(columns, row, strict=True)])
        for row in rows
    ]
    assert hashes.to_list() == expected
    assert all(BK_HEX.match(h) for h in hashes)


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_field_order_does_not_change_data_hash(data: st.DataObject) -> None:
    columns, rows = data.draw(typed_frames(nullable=True))
    frame = build(columns, rows)
    names = [name for name, _ in columns]
    shuffled = data.draw(st.permutations(names))
    assert with_data_hash(frame, names).equals(with_data_hash(frame, shuffled))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_changing_any_field_changes_data_hash(data: st.DataObject) -> None:
    columns, rows = data.draw(typed_frames(nullable=True))
    before = rows[0]
    index = data.draw(st.integers(0, len(columns) - 1))
    _, dtype = columns[index]
    after = list(before)
    after[index] = data.draw(VALUES[dtype] | st.none())
    assume(ref.canonical_text(dtype, after[index]) != ref.canonical_text(dtype, before[index]))

    hashes = with_data_hash(build(columns, [before, after]), [n for n, _ in columns])["data_hash"]
    assert hashes[0] != hashes[1]
    assert all(DATA_HEX.match(h) for h in hashes)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_changing_any_key_value_changes_bk_hash(data: st.DataObject) -> None:
    columns, rows = data.draw(typed_frames(nullable=False))
    before = rows[0]
    index = data.draw(st.integers(0, len(columns) - 1))
    _, dtype = columns[index]
    after = list(before)
    after[index] = data.draw(VALUES[dtype])
    assume(ref.canonical_text(dtype, after[index]) != ref.canonical_text(dtype, before[index]))

    frame = build(columns, [before, after])
    hashes = with_bk_hash(frame, "entity", [n for n, _ in columns])["bk_hash"]
    assert hashes[0] != hashes[1]


def test_null_and_empty_string_and_marker_lookalikes_differ() -> None:
    frame = pl.DataFrame({"a": [None, "", "\\N", "null", "None"]}, schema={"a": pl.String})
    hashes = with_data_hash(frame, ["a"])["data_hash"].to_list()
    assert len(set(hashes)) == 5


def test_key_values_are_separated_not_concatenated() -> None:
    frame = pl.DataFrame({"a": ["ab", "a"], "b": ["c", "bc"]})
    hashes = with_bk_hash(frame, "e", ["a", "b"])["bk_hash"].to_list()
    assert hashes[0] != hashes[1]


def test_with_identity_equals_both_hashes_and_keeps_row_order() -> None:
    frame = pl.DataFrame(
        {"no": [f"WO-{i}" for i in range(5000)], "qty": [i / 8 for i in range(5000)]}
    )
    both = with_identity(frame, "work_order", ["no"], ["no", "qty"])
    single = with_data_hash(with_bk_hash(frame, "work_order", ["no"]), ["no", "qty"])
    assert both.equals(single)
    assert both["bk_hash"][4321] == ref.bk_hash("work_order", [("String", "WO-4321")])
    assert both["data_hash"][4321] == ref.data_hash(
        [("no", "String", "WO-4321"), ("qty", "Float64", 4321 / 8)]
    )


def test_expressions_compose_and_name_their_output() -> None:
    frame = pl.DataFrame({"no": ["A"], "qty": [1.5]})
    out = (
        frame.lazy()
        .select(bk_hash_expr("item", ["no"], frame.schema), data_hash_expr(["qty"], frame.schema))
        .collect()
    )
    assert out.columns == ["bk_hash", "data_hash"]
    assert out.row(0) == (
        ref.bk_hash("item", [("String", "A")]),
        ref.data_hash([("qty", "Float64", 1.5)]),
    )
    renamed = with_bk_hash(frame, "item", ["no"], out="external_id")
    assert renamed.columns == ["no", "qty", "external_id"]
    assert with_data_hash(frame, ["qty"], out="dh")["dh"].item() == out["data_hash"].item()


# --- refusals -----------------------------------------------------------------------------


def test_separator_in_a_key_value_is_refused_without_echoing_the_value() -> None:
    frame = pl.DataFrame({"k": ["fine", "sec\x1fret"]})
    with pytest.raises(ValueError, match=r"U\+001F.*'k': 1") as error:
        with_bk_hash(frame, "item", ["k"])
    assert "sec" not in str(error.value)


@pytest.mark.parametrize("reserved", ["\x00", "\x1e", "\x1f"])
def test_reserved_characters_in_data_values_are_refused(reserved: str) -> None:
    frame = pl.DataFrame({"a": ["x", f"y{reserved}z"], "b": [1, 2]})
    with pytest.raises(ValueError, match=r"'a': 1"):
        with_data_hash(frame, ["a", "b"])


def test_null_key_value_is_refused() -> None:
    frame = pl.DataFrame({"k": ["A", None], "n": [1, 2]})
    with pytest.raises(ValueError, match=r"null key values.*'k': 1"):
        with_bk_hash(frame, "item", ["k", "n"])
    assert bk_hash_expr("item", ["k"], frame.schema) is not None
    assert frame.select(bk_hash_expr("item", ["k"], frame.schema))["bk_hash"][1] is None


def test_non_finite_floats_are_refused_by_frames_and_null_in_expressions() -> None:
    frame = pl.DataFrame({"k": ["A", "B"], "x": [1.0, float("nan")]})
    with pytest.raises(ValueError, match=r"NaN or infinite.*'x': 1"):
        with_data_hash(frame, ["x"])
    with pytest.raises(ValueError, match=r"NaN or infinite.*'x': 1"):
        with_bk_hash(frame, "item", ["k", "x"])
    out = frame.select(
        data_hash_expr(["k", "x"], frame.schema), bk_hash_expr("e", ["x"], frame.schema)
    )
    assert out["data_hash"][0] is not None and out["data_hash"][1] is None
    assert out["bk_hash"][0] is not None and out["bk_hash"][1] is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: with_bk_hash(f, "item", []), "at least one column"),
        (lambda f: with_bk_hash(f, "", ["k"]), "entity name"),
        (lambda f: with_bk_hash(f, "it\x1fem", ["k"]), "entity name"),
        (lambda f: with_bk_hash(f, "item", ["missing"]), r"not in the frame: \['missing'\]"),
        (lambda f: with_data_hash(f, []), "at least one field"),
        (lambda f: with_data_hash(f, ["k", "k"]), r"listed twice: \['k'\]"),
        (lambda f: with_data_hash(f, ["k", "missing"]), r"not in the frame: \['missing'\]"),
    ],
)
def test_bad_arguments_are_value_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(pl.DataFrame({"k": ["A"]}))


def test_field_names_with_control_characters_are_refused() -> None:
    frame = pl.DataFrame({"a\x1eb": ["x"]})
    with pytest.raises(ValueError, match="field name"):
        data_hash_expr(["a\x1eb"], frame.schema)


def test_unsupported_dtype_is_a_type_error_naming_the_column() -> None:
    frame = pl.DataFrame({"k": ["A"], "w": pl.Series([1.5], dtype=pl.Float32)})
    with pytest.raises(TypeError, match=r"'w'.*Float32"):
        with_data_hash(frame, ["k", "w"])
    with pytest.raises(TypeError, match=r"'w'.*Float32"):
        with_bk_hash(frame, "item", ["w"])


def test_column_names_are_literal_not_wildcards_or_regexes() -> None:
    frame = pl.DataFrame({"*": ["star"], "^a.*$": ["regex"], "ab": ["plain"]})
    names = ["*", "^a.*$", "ab"]
    out = with_identity(frame, "e", ["*"], names)
    assert out["bk_hash"].item() == ref.bk_hash("e", [("String", "star")])
    assert out["data_hash"].item() == ref.data_hash(
        [("*", "String", "star"), ("^a.*$", "String", "regex"), ("ab", "String", "plain")]
    )
