"""Field types: the column-wise check agrees with the value-by-value rule."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.values import column_ok, value_ok
from syncflow_dagster_tests.emulators.schedulehub.strategies import NEAR, VALID, json_values

TYPES = list(VALID)


@pytest.mark.parametrize("type_", TYPES)
@settings(max_examples=300, deadline=None)
@given(data=st.data(), nullable=st.booleans())
def test_column_check_equals_value_rule(type_: str, data: st.DataObject, nullable: bool) -> None:
    value = st.one_of(VALID[type_], VALID[type_], NEAR[type_], json_values, st.none())
    column = data.draw(st.lists(value, max_size=12))
    expected = all(
        (v is None and nullable) or (v is not None and value_ok(type_, v)) for v in column
    )
    assert column_ok(type_, column, nullable) == expected
    assert column_ok(type_, tuple(column), nullable) == expected


@pytest.mark.parametrize(
    ("type_", "value", "ok"),
    [
        ("string", "", True),
        ("string", 1, False),
        ("integer", 1, True),
        ("integer", 1.0, False),
        ("integer", True, False),
        ("number", 1, True),
        ("number", 1.5, True),
        ("number", False, False),
        ("boolean", False, True),
        ("boolean", 0, False),
        ("date", "2024-02-29", True),
        ("date", "2023-02-29", False),
        ("date", "2024-13-01", False),
        ("date", "2024-W01-1", False),
        ("date", "20240101", False),
        ("date", "２０２４-01-01", False),
        ("datetime", "2024-01-01T00:00:00Z", True),
        ("datetime", "2024-01-01T00:00Z", True),
        ("datetime", "2024-01-01T00:00:00.123456789+05:30", True),
        ("datetime", "2024-01-01T00:00:00-0800", True),
        ("datetime", "2024-01-01T00:00:00", False),
        ("datetime", "2024-01-01 00:00:00Z", False),
        ("datetime", "2024-01-01T24:00:00Z", False),
        ("datetime", "2024-01-01T0000Z", False),
        ("datetime", "2024-01-01", False),
        ("datetime", "20240101T000000Z", False),
    ],
)
def test_examples(type_: str, value: Any, ok: bool) -> None:
    assert value_ok(type_, value) is ok
    assert column_ok(type_, [value], nullable=False) is ok
    # A repeated value is checked once and remembered; the answer stays the same.
    assert column_ok(type_, [value, value], nullable=False) is ok
