import io
import json
import math
from collections.abc import Callable
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster_tests.stages.normalize.helpers import code_of, fast_and_slow, one, run_column

CONTRACT_FORMS = ["1234.5", " 1234.50 ", "1,234.50", "1.2345E3"]


def json_number_text(value: float | int) -> str:
    """What the fetch stage makes of a JSON number: NDJSON read with an all-String schema."""
    line = json.dumps({"x": value}).encode()
    return pl.read_ndjson(io.BytesIO(line), schema={"x": pl.String})["x"][0]


@pytest.mark.parametrize("text", CONTRACT_FORMS)
def test_contract_forms_of_number_12_3(text: str) -> None:
    assert one("NUMBER(12,3)", text) == 1234.5


def test_leading_point_and_negative_zero() -> None:
    assert one("NUMBER(12,3)", ".5") == 0.5
    assert one("NUMBER(12,3)", "-.5") == -0.5
    for text in ("-0", "-0.000", "-0e5", "-.0"):
        value = one("NUMBER(12,3)", text)
        assert value == 0.0
        assert math.copysign(1.0, value) == 1.0, f"{text} gave a negative zero"
    assert one("NUMBER(3,0)", "-0") == 0


def test_empty_and_json_null_are_null() -> None:
    assert run_column("NUMBER(12,3)", ["", None, "   "]) == [(None, None)] * 3
    assert run_column("NUMBER(3,0)", ["", None]) == [(None, None)] * 2


@pytest.mark.parametrize("value", [1234.5, -0.0, 0.001, 99999.999, 12, 1e8])
def test_json_number_text(value: float) -> None:
    assert one("NUMBER(12,3)", json_number_text(value)) == value


def test_more_accepted_spellings() -> None:
    assert one("NUMBER(12,3)", "+5") == 5.0
    assert one("NUMBER(12,3)", "5.") == 5.0
    assert one("NUMBER(12,3)", "1e3") == 1000.0
    assert one("NUMBER(12,3)", "1.5E+3") == 1500.0
    assert one("NUMBER(12,3)", "15e-3") == 0.015
    assert one("NUMBER(12,3)", "1,234,567.891") == 1234567.891
    assert one("NUMBER(12,3)", "\u00a0\t1.5\u3000") == 1.5
    assert one("NUMBER(12,3)", "000001.5") == 1.5


def test_integral_types_become_int64() -> None:
    assert one("NUMBER(3,0)", "999") == 999
    assert one("NUMBER(3)", "-999") == -999
    assert one("NUMBER(3,0)", "12.000") == 12
    assert one("NUMBER(3,0)", "1E2") == 100
    assert one("NUMBER(3,0)", "1.5E1") == 15
    assert one("NUMBER(3,0)", " 1,000 ".replace("1,000", "100")) == 100
    assert one("INTEGER", "42") == 42
    assert one("NUMBER(19,0)", "9223372036854775807") == 9223372036854775807
    assert one("NUMBER(5,-2)", "12300") == 12300


def test_trailing_zeros_beyond_the_scale_are_fine() -> None:
    assert one("NUMBER(12,1)", "1234.50") == 1234.5
    assert one("NUMBER(12,1)", "1234.5000000000000") == 1234.5
    assert one("NUMBER(12,1)", "1.2340E3") == 1234.0


def test_unconstrained_number() -> None:
    assert one("NUMBER", "3.14159265358979") == 3.14159265358979
    assert one("NUMBER", "1e125") == 1e125
    assert one("NUMBER", "123456789012345678901234567890") == 1.2345678901234568e29


def test_scale_greater_than_precision() -> None:
    assert one("NUMBER(2,5)", "0.00099") == 0.00099
    assert code_of("NUMBER(2,5)", "0.001") == "number_out_of_range"
    assert code_of("NUMBER(2,5)", "0.000001") == "number_scale_exceeded"


@pytest.mark.parametrize(
    ("type_text", "text"),
    [
        ("NUMBER(12,3)", "1234567890"),
        ("NUMBER(12,3)", "-1,234,567,890.5"),
        ("NUMBER(12,3)", "1E9"),
        ("NUMBER(12,3)", "1e400"),
        ("NUMBER(12,3)", "1e99999999999999999999999"),
        ("NUMBER(3,0)", "1000"),
        ("NUMBER(3,0)", "-1000"),
        ("NUMBER(3,0)", "1.5E3"),
        ("NUMBER(19,0)", "9223372036854775808"),
        ("NUMBER(19,0)", "9999999999999999999"),
        ("INTEGER", "1e30"),
        ("NUMBER", "1e126"),
    ],
)
def test_number_out_of_range(type_text: str, text: str) -> None:
    assert code_of(type_text, text) == "number_out_of_range"


@pytest.mark.parametrize(
    ("type_text", "text"),
    [
        ("NUMBER(12,3)", "1.2345"),
        ("NUMBER(12,3)", "0.0001"),
        ("NUMBER(12,3)", "1e-4"),
        ("NUMBER(12,1)", "1234.55"),
        ("NUMBER(3,0)", "12.5"),
        ("NUMBER(3,0)", ".5"),
        ("NUMBER(3,0)", "1.55E1"),
        ("NUMBER(5,-2)", "12345"),
        ("NUMBER(12,3)", "1e-99999999999999999999999"),
    ],
)
def test_number_scale_exceeded(type_text: str, text: str) -> None:
    assert code_of(type_text, text) == "number_scale_exceeded"


@pytest.mark.parametrize(
    "text",
    [
        "12x",
        "abc",
        ".",
        "-",
        "+",
        "e5",
        "1e",
        "1.2.3",
        "--1",
        "1,23",
        "1,2345.0",
        "12,34,567",
        ",123",
        "1 234",
        "1_000",
        "0x1F",
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "NaN",
        "١٢٣",
        "1.5E3.0",
    ],
)
@pytest.mark.parametrize("type_text", ["NUMBER(12,3)", "NUMBER(3,0)", "NUMBER", "INTEGER"])
def test_number_unreadable(type_text: str, text: str) -> None:
    assert code_of(type_text, text) == "number_unreadable"


@st.composite
def decimal_in_type(draw: st.DrawFn, max_precision: int = 18) -> tuple[int, int, Decimal]:
    precision = draw(st.integers(1, max_precision))
    scale = draw(st.integers(0, precision))
    unscaled = draw(st.integers(-(10**precision) + 1, 10**precision - 1))
    return precision, scale, Decimal(unscaled).scaleb(-scale)


SPACES = st.text(alphabet=" \t\u00a0\u2003\u3000", max_size=3)


def renderings(draw: Callable[[st.SearchStrategy[str]], str], value: Decimal) -> list[str]:
    plain = f"{value:f}"
    forms = [
        plain,
        draw(SPACES) + plain + draw(SPACES),
        f"{value:,f}",
        f"{value:E}",
        f"{value:e}",
        f"{value.normalize():f}",
    ]
    if plain.startswith(("0.", "-0.")):
        forms.append(plain.replace("0.", ".", 1))
    return forms


@settings(max_examples=150, deadline=None)
@given(st.data(), decimal_in_type())
def test_any_decimal_within_the_type_reads_back(data: st.DataObject, drawn: tuple) -> None:
    precision, scale, value = drawn
    type_text = f"NUMBER({precision},{scale})"
    forms = renderings(data.draw, value)
    expected: float | int = int(value) if scale == 0 else float(value)
    for form, (got, code) in zip(forms, run_column(type_text, forms), strict=True):
        assert code is None, f"{form!r} for {type_text}: {code}"
        assert got == expected, f"{form!r} for {type_text}: {got!r} != {expected!r}"
        assert not (isinstance(got, float) and math.copysign(1.0, got) < 0 and got == 0)


@settings(max_examples=60, deadline=None)
@given(decimal_in_type(max_precision=15))
def test_json_number_text_of_any_decimal_reads_back(drawn: tuple) -> None:
    precision, scale, value = drawn
    type_text = f"NUMBER({precision},{scale})"
    number = int(value) if scale == 0 else float(value)
    got = one(type_text, json_number_text(number))
    assert got == number


@settings(max_examples=100, deadline=None)
@given(decimal_in_type())
def test_one_digit_too_many_is_refused(drawn: tuple) -> None:
    precision, scale, value = drawn
    type_text = f"NUMBER({precision},{scale})"
    too_precise = f"{value:f}" + ("" if scale else ".") + "1"
    big = Decimal(10) ** (precision - scale) + abs(value)
    assert code_of(type_text, too_precise) == "number_scale_exceeded"
    assert code_of(type_text, f"{big:f}") == "number_out_of_range"


NUMBER_ALPHABET = st.text(alphabet="0123456789.,-+eE \u00a0xn", max_size=14)


@settings(max_examples=200, deadline=None)
@given(st.lists(NUMBER_ALPHABET, min_size=1, max_size=20))
@pytest.mark.parametrize("type_text", ["NUMBER(12,3)", "NUMBER(3,0)", "NUMBER", "NUMBER(19,0)"])
def test_fast_path_agrees_with_the_exact_reader(type_text: str, texts: list[str]) -> None:
    for text, (settled, fast, slow, code) in zip(
        texts, fast_and_slow(type_text, texts), strict=True
    ):
        if settled:
            assert code is None, f"{text!r}: fast path took what the reader refuses ({code})"
            assert fast == slow, f"{text!r}: fast {fast!r} != exact {slow!r}"
            assert repr(fast) == repr(slow)


def test_json_number_text_keeps_exact_digits_for_the_scale_check() -> None:
    assert json_number_text(1e-7) == "0.0000001"
    assert one("NUMBER(12,7)", json_number_text(1e-7)) == 1e-7
    assert code_of("NUMBER(12,3)", json_number_text(1e-7)) == "number_scale_exceeded"
