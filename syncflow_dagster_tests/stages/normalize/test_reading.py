import polars as pl
import pytest

from syncflow_dagster.stages.normalize import ColumnSpec, normalize, normalizer_for
from syncflow_dagster.stages.normalize.reading import DISTINCT_SHARE, plan_column
from syncflow_dagster_tests.stages.normalize.helpers import ZONE, raw_frame

# A few distinct values, good and bad, in several forms per type.
VALUES = {
    "NUMBER(5,2)": ["1.5", " 2,000.25 ", "1.5E2", "-0", "", None, "x", "1.234", "100000", "[1]"],
    "DATE": ["2026-11-26", "26-NOV-26", "2026-03-29 02:30:00", "31-FEB-26", "soon", "", None],
    "TIMESTAMP WITH TIME ZONE": ["2026-11-26 14:03:00.123456 +01:00", "2026-11-26T14:03:00Z", "x"],
    "VARCHAR2(4)": ["OPEN", " ab ", "e\u0301", "\u00a0", "TOO LONG", "", None, "[]", "[x]"],
    "CHAR(4)": ["PL1 ", "PL2 ", "PL12X", "a\x00"],
    "FLAG": ["Y", "n", " 1 ", "maybe", None, "{}"],
}


@pytest.mark.parametrize("type_text", sorted(VALUES))
def test_a_column_of_few_distinct_values_reads_like_each_value_alone(type_text: str) -> None:
    values = VALUES[type_text]
    repeated = values * (DISTINCT_SHARE * len(values))
    spec = ColumnSpec("C", type_text)
    column = plan_column(0, "C", normalizer_for(spec, ZONE), pl.Series("C", repeated, pl.String))
    assert column.distinct is not None, "expected the distinct-value read"

    many = normalize(raw_frame({"C": repeated}), {"C": spec}, ZONE)
    alone = [normalize(raw_frame({"C": [value]}), {"C": spec}, ZONE) for value in values]
    expected_values = [r.frame["C"].to_list() for r in alone]
    expected_codes = [r.failures["code"].to_list() for r in alone]
    expected_details = [r.failures["detail"].to_list() for r in alone]

    got_values = dict(zip(many.frame["_row"].to_list(), many.frame["C"].to_list(), strict=True))
    failures = many.failures.to_dicts()
    got_codes = {f["_row"]: f["code"] for f in failures}
    got_details = {f["_row"]: f["detail"] for f in failures}
    for row in range(len(repeated)):
        i = row % len(values)
        assert ([got_values[row]] if row in got_values else []) == expected_values[i]
        assert ([got_codes[row]] if row in got_codes else []) == expected_codes[i]
        assert ([got_details[row]] if row in got_details else []) == expected_details[i]


def test_many_distinct_values_are_read_directly() -> None:
    raw = pl.Series("C", [str(i) for i in range(5000)], pl.String)
    spec = ColumnSpec("C", "NUMBER(5)")
    assert plan_column(0, "C", normalizer_for(spec, ZONE), raw).distinct is None


def test_columns_read_both_ways_in_one_frame() -> None:
    height = 40 * DISTINCT_SHARE
    frame = raw_frame(
        {
            "STATUS": ["OPEN", "CLOSED", "OPEN", "x" * 20] * (height // 4),
            "QTY": [f"{i}.5" for i in range(height - 1)] + ["bad"],
        }
    )
    specs = {"STATUS": ColumnSpec("STATUS", "VARCHAR2(6)"), "QTY": ColumnSpec("QTY", "NUMBER(9,1)")}
    result = normalize(frame, specs, ZONE)
    failed = result.failures["_row"].to_list()
    assert failed == list(range(3, height, 4))
    assert result.frame.height == height - len(failed)
    assert result.frame["QTY"][0] == 0.5
    assert set(result.frame["STATUS"].to_list()) == {"OPEN", "CLOSED"}
    last = result.failures.filter(pl.col("_row") == height - 1).to_dicts()[0]
    assert last["column"] == "STATUS"  # first in spec order
    assert "QTY: number_unreadable" in last["detail"]


@pytest.mark.parametrize(
    "type_text",
    [
        "NUMBER(5,2)",
        "INTEGER",
        "DATE",
        "TIMESTAMP(6)",
        "TIMESTAMP WITH TIME ZONE",
        "FLAG",
        "CHAR(9)",
    ],
)
@pytest.mark.parametrize("raw", ["[1, 2]", '{"a": 1}', "[]", '["2026-11-26"]'])
def test_a_json_array_or_object_is_not_a_scalar_whatever_the_type(type_text: str, raw: str) -> None:
    result = normalize(raw_frame({"C": [raw, None]}), {"C": ColumnSpec("C", type_text)}, ZONE)
    [failure] = result.failures.to_dicts()
    assert failure["code"] == "value_not_scalar" and failure["_row"] == 0
    assert "a JSON array or object, not a single value" in failure["detail"]
