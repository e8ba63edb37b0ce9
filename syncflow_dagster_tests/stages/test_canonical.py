"""Canonical text forms per dtype (docs/IDENTITY.md), against the pure-Python reference."""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.stages.canonical import canonical_text_expr, non_finite_expr
from syncflow_dagster_tests.stages.identity_reference import canonical_text

UTC = dt.UTC
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def render(series: pl.Series) -> list[str | None]:
    frame = series.to_frame("v")
    return frame.select(canonical_text_expr("v", frame.schema["v"]))["v"].to_list()


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pl.Series(["", "a b", "Grüße 😀", None]), ["", "a b", "Grüße 😀", None]),
        (
            pl.Series([0, -1, 2**63 - 1, -(2**63), None]),
            ["0", "-1", str(2**63 - 1), str(-(2**63)), None],
        ),
        (pl.Series([-128, 127], dtype=pl.Int8), ["-128", "127"]),
        (pl.Series([2**64 - 1], dtype=pl.UInt64), ["18446744073709551615"]),
        (pl.Series([-(2**127), 2**127 - 1], dtype=pl.Int128), [str(-(2**127)), str(2**127 - 1)]),
        (pl.Series([2**128 - 1], dtype=pl.UInt128), [str(2**128 - 1)]),
        (pl.Series([True, False, None]), ["true", "false", None]),
        (
            pl.Series([0.1, 1e-7, 1e21, 123456789.125, -0.0, 0.0, None]),
            [
                "3fb999999999999a",
                "3e7ad7f29abcaf48",
                "444b1ae4d6e2ef50",
                "419d6f3454800000",
                "0000000000000000",
                "0000000000000000",
                None,
            ],
        ),
        (
            pl.Series([dt.date(1, 1, 1), dt.date(2024, 2, 29), dt.date(9999, 12, 31), None]),
            ["0001-01-01", "2024-02-29", "9999-12-31", None],
        ),
        (
            pl.Series(
                [
                    dt.datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
                    dt.datetime(2024, 1, 1, tzinfo=UTC),
                    dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
                    dt.datetime(1, 1, 1, tzinfo=UTC),
                    None,
                ]
            ),
            [
                "2024-06-30T23:59:59.999999Z",
                "2024-01-01T00:00:00.000000Z",
                "1969-12-31T23:59:59.000001Z",
                "0001-01-01T00:00:00.000000Z",
                None,
            ],
        ),
        (pl.Series([None, None], dtype=pl.Null), [None, None]),
    ],
    ids=lambda value: str(value.dtype) if isinstance(value, pl.Series) else "",
)
def test_canonical_forms(series: pl.Series, expected: list[str | None]) -> None:
    assert render(series) == expected


def test_datetime_is_rendered_as_its_utc_instant_in_any_zone_and_unit() -> None:
    instant = pl.Series([dt.datetime(2024, 3, 31, 0, 30, 0, 123000, tzinfo=UTC)])
    berlin = instant.dt.convert_time_zone("Europe/Berlin")
    tokyo_ms = instant.dt.cast_time_unit("ms").dt.convert_time_zone("Asia/Tokyo")
    expected = ["2024-03-31T00:30:00.123000Z"]
    assert render(instant) == render(berlin) == render(tokyo_ms) == expected


@pytest.mark.parametrize(
    "series",
    [
        pl.Series([1.5], dtype=pl.Float32),
        pl.Series([Decimal("1.50")]),
        pl.Series([[1, 2]]),
        pl.Series(["a"], dtype=pl.Categorical),
        pl.Series([b"\x00"], dtype=pl.Binary),
        pl.Series([dt.time(12, 0)]),
        pl.Series([dt.timedelta(seconds=1)]),
        pl.Series([dt.datetime(2024, 1, 1)]),
        pl.Series([dt.datetime(2024, 1, 1, tzinfo=UTC)]).dt.cast_time_unit("ns"),
        pl.Series([{"x": 1}]),
    ],
    ids=lambda series: str(series.dtype),
)
def test_unsupported_dtype_is_a_type_error_naming_column_and_dtype(series: pl.Series) -> None:
    with pytest.raises(TypeError, match=r"'qty_col'.*" + re.escape(str(series.dtype))):
        canonical_text_expr("qty_col", series.dtype)


def test_dtype_classes_are_accepted_like_instances() -> None:
    frame = pl.DataFrame({"v": [1]})
    assert frame.select(canonical_text_expr("v", pl.Int64))["v"].to_list() == ["1"]
    with pytest.raises(TypeError, match=r"'w'.*without a time zone"):
        canonical_text_expr("w", pl.Datetime)


def test_non_finite_floats_have_no_text_and_are_flagged() -> None:
    frame = pl.DataFrame({"v": [float("nan"), float("inf"), -float("inf"), 1.0, None]})
    check = non_finite_expr("v", pl.Float64)
    assert check is not None
    out = frame.select(canonical_text_expr("v", pl.Float64).alias("text"), check.alias("bad"))
    assert out["text"].to_list() == [None, None, None, "3ff0000000000000", None]
    assert out["bad"].to_list() == [True, True, True, False, False]
    assert non_finite_expr("v", pl.Int64) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=50))
def test_float_text_matches_reference(values: list[float]) -> None:
    texts = render(pl.Series(values, dtype=pl.Float64))
    assert texts == [canonical_text("Float64", value) for value in values]
    assert all(text is not None and HEX16.match(text) for text in texts)
    assert "8000000000000000" not in texts  # never a negative zero


def test_float_text_over_random_bit_patterns() -> None:
    """Every exponent range, subnormals and extremes: 100k random doubles."""
    rng = random.Random(20240601)
    bits = pl.Series("v", [rng.getrandbits(64) for _ in range(100_000)], dtype=pl.UInt64)
    floats = bits.to_frame().select(pl.col("v").reinterpret(dtype=pl.Float64))["v"]
    floats = floats.filter(floats.is_finite())
    assert render(floats) == [canonical_text("Float64", value) for value in floats.to_list()]


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.integers(-(2**63), 2**63 - 1).map(lambda v: pl.Series([v], dtype=pl.Int64)),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda v: pl.Series([v])),
        st.booleans().map(lambda v: pl.Series([v])),
        st.dates().map(lambda v: pl.Series([v])),
        st.datetimes(timezones=st.just(UTC)).map(lambda v: pl.Series([v])),
    )
)
def test_non_string_forms_never_contain_control_characters(series: pl.Series) -> None:
    """So the separators (U+001E, U+001F) and the null marker (U+0000) cannot come from them."""
    (text,) = render(series)
    assert text is not None
    assert not re.search(r"[\x00-\x1f\x7f]", text)
