from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.stages.failures import FAILURE_SCHEMA
from syncflow_dagster.stages.normalize import ColumnSpec, NormalizeResult, normalize, normalizer_for
from syncflow_dagster_tests.stages.normalize.helpers import ZONE, raw_frame

WORK_ORDERS = {
    "WO_NO": "VARCHAR2(20)",
    "ITEM_NO": "VARCHAR2(20)",
    "ORDER_QTY": "NUMBER(12,3)",
    "COMPLETED_QTY": "NUMBER(12,3)",
    "STATUS": "VARCHAR2(12)",
    "PRIORITY": "NUMBER(3,0)",
    "START_DATE": "DATE",
    "DUE_DATE": "DATE",
    "RELEASED_TS": "TIMESTAMP WITH TIME ZONE",
    "PLANNER_CODE": "CHAR(8)",
    "NOTES": "VARCHAR2(400)",
    "ORA_ROWSCN": "NUMBER(19,0)",
}
SPECS = {name: ColumnSpec(name, type_text) for name, type_text in WORK_ORDERS.items()}


def work_order(**overrides: str | None) -> dict[str, str | None]:
    record: dict[str, str | None] = {
        "WO_NO": "WO-1001",
        "ITEM_NO": "IT-7",
        "ORDER_QTY": "1234.5",
        "COMPLETED_QTY": "0",
        "STATUS": "RELEASED",
        "PRIORITY": "5",
        "START_DATE": "2026-11-26 14:03:00",
        "DUE_DATE": "2026-11-30",
        "RELEASED_TS": "2026-11-26 14:03:00.123456 +01:00",
        "PLANNER_CODE": "PL01    ",
        "NOTES": None,
        "ORA_ROWSCN": "1000001",
    }
    record.update(overrides)
    return record


def frame_of(records: list[dict[str, str | None]]) -> pl.DataFrame:
    return raw_frame({name: [r[name] for r in records] for name in records[0]})


def run(records: list[dict[str, str | None]]) -> NormalizeResult:
    return normalize(frame_of(records), SPECS, ZONE)


def test_a_clean_work_order_is_typed() -> None:
    result = run([work_order()])
    assert result.failures.height == 0
    assert result.failures.schema == pl.Schema(FAILURE_SCHEMA)
    [row] = result.frame.to_dicts()
    assert row == {
        "_row": 0,
        "WO_NO": "WO-1001",
        "ITEM_NO": "IT-7",
        "ORDER_QTY": 1234.5,
        "COMPLETED_QTY": 0.0,
        "STATUS": "RELEASED",
        "PRIORITY": 5,
        "START_DATE": datetime(2026, 11, 26, 13, 3, tzinfo=UTC),
        "DUE_DATE": datetime(2026, 11, 29, 23, tzinfo=UTC),
        "RELEASED_TS": datetime(2026, 11, 26, 13, 3, 0, 123456, tzinfo=UTC),
        "PLANNER_CODE": "PL01",
        "NOTES": None,
        "ORA_ROWSCN": 1000001,
    }
    expected: dict[str, pl.DataType] = {"_row": pl.UInt32()}
    expected.update({name: spec.polars_dtype for name, spec in SPECS.items()})
    assert result.frame.schema == pl.Schema(expected)


def test_exotic_forms_land_in_their_own_rows() -> None:
    records = [work_order(ORA_ROWSCN=str(i)) for i in range(6)]
    records[1]["ORDER_QTY"] = " 1,234.50 "
    records[3]["ORDER_QTY"] = "1.2345E3"
    records[4]["START_DATE"] = "26-NOV-26"
    records[5]["RELEASED_TS"] = "2026-11-26T13:03:00.123456Z"
    records[2]["NOTES"] = "\u00a0Cafe\u0301\x07 "
    result = run(records)
    assert result.failures.height == 0
    frame = result.frame
    assert frame["_row"].to_list() == list(range(6))
    assert frame["ORA_ROWSCN"].to_list() == list(range(6))
    assert frame["ORDER_QTY"].to_list() == [1234.5] * 6
    assert frame["START_DATE"][4] == datetime(2026, 11, 25, 23, tzinfo=UTC)
    assert frame["RELEASED_TS"].n_unique() == 1
    assert frame["NOTES"].to_list() == [None, None, "Caf\u00e9", None, None, None]


def test_a_failing_record_is_a_failure_and_not_in_the_frame() -> None:
    records = [work_order(ORA_ROWSCN=str(i)) for i in range(4)]
    records[2]["PRIORITY"] = "1000"
    result = run(records)
    assert result.frame["_row"].to_list() == [0, 1, 3]
    assert result.failures.to_dicts() == [
        {
            "_row": 2,
            "code": "number_out_of_range",
            "column": "PRIORITY",
            "detail": "PRIORITY: number_out_of_range - more than 3 integer digits for "
            "NUMBER(3,0), raw '1000'",
        }
    ]


def test_first_failing_column_is_by_spec_order_and_detail_names_every_one() -> None:
    records = [
        work_order(
            ORDER_QTY="12x",
            START_DATE="31-FEB-26",
            STATUS="MUCH TOO LONG STATUS",
            PLANNER_CODE="PLANNER01",
        )
    ]
    specs = dict(reversed(SPECS.items()))  # spec order: PLANNER_CODE ... STATUS ... ORDER_QTY
    result = normalize(frame_of(records), specs, ZONE)
    assert result.frame.height == 0
    [failure] = result.failures.to_dicts()
    assert failure["column"] == "PLANNER_CODE"
    assert failure["code"] == "string_too_long"
    detail = failure["detail"]
    for column, code, raw in [
        ("PLANNER_CODE", "string_too_long", "'PLANNER01'"),
        ("START_DATE", "date_invalid", "'31-FEB-26'"),
        ("STATUS", "string_too_long", "'MUCH TOO LONG STATUS'"),
        ("ORDER_QTY", "number_unreadable", "'12x'"),
    ]:
        assert f"{column}: {code} - " in detail
        assert raw in detail
    assert detail.index("PLANNER_CODE") < detail.index("START_DATE") < detail.index("ORDER_QTY")


def test_detail_cuts_long_raw_values_and_shows_controls() -> None:
    long_text = "x" * 5000
    result = run([work_order(WO_NO=long_text, ORDER_QTY="1\x002")])
    [failure] = result.failures.to_dicts()
    assert len(failure["detail"]) < 400
    assert "x" * 60 + "…" in failure["detail"]
    assert "x" * 61 not in failure["detail"]
    assert "'1\ufffd2'" in failure["detail"]
    assert "\x00" not in failure["detail"]


def test_columns_without_a_spec_pass_through_untouched() -> None:
    frame = raw_frame({"QTY": ["1.5", "2"], "EXTRA": [" keep me ", "1,5"]}).with_columns(
        OTHER=pl.Series([1.25, None]),
        LIST=pl.Series([[1], [2, 3]]),
    )
    result = normalize(frame, {"QTY": ColumnSpec("QTY", "NUMBER(5,2)")}, ZONE)
    assert result.frame.columns == frame.columns
    assert result.frame.drop("QTY").equals(frame.drop("QTY"))
    assert result.frame["QTY"].to_list() == [1.5, 2.0]


@pytest.mark.parametrize("row_dtype", [pl.UInt32, pl.Int64])
def test_row_ids_are_carried_through(row_dtype: pl.DataType) -> None:
    frame = raw_frame({"QTY": ["1", "x", "3"]}).with_columns(
        pl.Series("_row", [70, 10, 50], dtype=row_dtype)
    )
    result = normalize(frame, {"QTY": ColumnSpec("QTY", "NUMBER(3)")}, ZONE)
    assert result.frame["_row"].dtype == row_dtype
    assert result.frame["_row"].to_list() == [70, 50]
    assert result.failures["_row"].to_list() == [10]
    assert result.failures.schema == pl.Schema(FAILURE_SCHEMA)


def test_an_all_null_column_may_arrive_as_null_dtype() -> None:
    frame = raw_frame({"QTY": ["1"]}).with_columns(NOTE=pl.lit(None))
    specs = {"QTY": ColumnSpec("QTY", "NUMBER(3)"), "NOTE": ColumnSpec("NOTE", "VARCHAR2(5)")}
    result = normalize(frame, specs, ZONE)
    assert result.frame.to_dicts() == [{"_row": 0, "QTY": 1, "NOTE": None}]


def test_an_empty_frame() -> None:
    result = normalize(raw_frame({"QTY": []}), {"QTY": ColumnSpec("QTY", "NUMBER(3)")}, ZONE)
    assert result.frame.height == 0
    assert result.frame.schema["QTY"] == pl.Int64
    assert result.failures.height == 0


@pytest.mark.parametrize(
    ("frame", "specs", "zone", "error", "message"),
    [
        (
            raw_frame({"Q": ["1"]}),
            {"Q": ColumnSpec("Q", "NUMBER")},
            "Mars/Olympus",
            ValueError,
            "Mars",
        ),
        (
            raw_frame({"Q": ["1"]}).drop("_row"),
            {"Q": ColumnSpec("Q", "NUMBER")},
            ZONE,
            ValueError,
            "_row",
        ),
        (raw_frame({"Q": ["1"]}), {"P": ColumnSpec("P", "NUMBER")}, ZONE, ValueError, "P"),
        (raw_frame({"Q": ["1"]}), {"Q": ColumnSpec("P", "NUMBER")}, ZONE, ValueError, "P"),
        (
            raw_frame({"Q": ["1"]}).with_columns(pl.col("Q").cast(pl.Int64)),
            {"Q": ColumnSpec("Q", "NUMBER")},
            ZONE,
            TypeError,
            "Q",
        ),
    ],
)
def test_bad_input_is_refused_loudly(
    frame: pl.DataFrame,
    specs: dict[str, ColumnSpec],
    zone: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        normalize(frame, specs, zone)


# Conservation: pools of good and bad raw values per column, mixed at random.
POOLS: dict[str, tuple[str, list[str | None], list[tuple[str, str]]]] = {
    "QTY": (
        "NUMBER(7,2)",
        ["1.5", " 1,234.5 ", "1.5E2", ".5", "-0", "", None, "99999.99"],
        [
            ("1.234", "number_scale_exceeded"),
            ("100000", "number_out_of_range"),
            ("x", "number_unreadable"),
        ],
    ),
    "DAY": (
        "DATE",
        ["2026-11-26", "26-NOV-26", "20261126", "2026-11-26T14:03:00", "", None],
        [
            ("31-FEB-26", "date_invalid"),
            ("soon", "date_unreadable"),
            ("2026-02-30", "date_invalid"),
        ],
    ),
    "AT": (
        "TIMESTAMP WITH TIME ZONE",
        ["2026-11-26 14:03:00.5 +01:00", "2026-11-26T14:03:00Z", None],
        [("2026-11-26 14:03:00", "timestamp_unreadable")],
    ),
    "NAME": (
        "VARCHAR2(3)",
        ["abc", " ab ", "\u00a0", "", None, "e\u0301"],
        [("abcd", "string_too_long")],
    ),
    "ACTIVE": ("FLAG", ["Y", "n", " 1 ", "", None], [("yes", "flag_unreadable")]),
}


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, list[str | None]], list[str | None]]:
    height = draw(st.integers(1, 25))
    columns: dict[str, list[str | None]] = {name: [] for name in POOLS}
    first_codes: list[str | None] = []
    for _ in range(height):
        first: str | None = None
        for name, (_, good, bad) in POOLS.items():
            value: str | None
            if bad and draw(st.integers(0, 9)) == 0:
                value, code = draw(st.sampled_from(bad))
                first = first or code
            else:
                value = draw(st.sampled_from(good))
            columns[name].append(value)
        first_codes.append(first)
    return columns, first_codes


@settings(max_examples=100, deadline=None)
@given(records())
def test_every_record_ends_in_exactly_one_of_frame_and_failures(drawn: tuple) -> None:
    columns, first_codes = drawn
    frame = raw_frame(columns)
    specs = {name: ColumnSpec(name, type_text) for name, (type_text, _, _) in POOLS.items()}
    result = normalize(frame, specs, ZONE)
    clean = result.frame["_row"].to_list()
    failed = result.failures["_row"].to_list()
    assert sorted(clean + failed) == list(range(frame.height))
    assert clean == sorted(clean)
    assert failed == sorted(failed)
    assert clean == [i for i, code in enumerate(first_codes) if code is None]
    assert result.failures["code"].to_list() == [c for c in first_codes if c is not None]
    for name, spec in specs.items():
        assert result.frame[name].dtype == spec.polars_dtype


def test_specs_may_be_a_plain_sequence() -> None:
    frame = raw_frame({"A": ["x", "1"], "B": ["1", "2"]})
    specs = [ColumnSpec("B", "NUMBER(1)"), ColumnSpec("A", "NUMBER(1)")]
    result = normalize(frame, specs, ZONE)
    assert result.frame.to_dicts() == [{"_row": 1, "A": 1, "B": 2}]
    assert result.failures["column"].to_list() == ["A"]
    with pytest.raises(ValueError, match="two specs"):
        normalize(frame, [*specs, ColumnSpec("A", "NUMBER(2)")], ZONE)


@pytest.mark.parametrize("type_text", [*sorted(set(WORK_ORDERS.values())), "FLAG", "TIMESTAMP"])
def test_slow_paths_read_null_and_empty_as_null(type_text: str) -> None:
    parsed = normalizer_for(ColumnSpec("C", type_text), ZONE).slow(
        pl.Series("C", [None, "", "  "], dtype=pl.String)
    )
    assert parsed.values.to_list() == [None, None, None]
    assert parsed.codes.to_list() == [None, None, None]
