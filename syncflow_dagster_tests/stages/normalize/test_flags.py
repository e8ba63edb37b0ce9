import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster_tests.stages.normalize.helpers import code_of, fast_and_slow, one, run_column

TRUE = ["Y", "y", "1", "T", "t", " Y ", "\ty\u00a0"]
FALSE = ["N", "n", "0", "F", "f", " N", "0 "]


@pytest.mark.parametrize("raw", TRUE)
def test_true_forms(raw: str) -> None:
    assert one("FLAG", raw) is True
    assert one("CHAR(1)", raw, flag=True) is True


@pytest.mark.parametrize("raw", FALSE)
def test_false_forms(raw: str) -> None:
    assert one("FLAG", raw) is False
    assert one("CHAR(1)", raw, flag=True) is False


def test_empty_and_null_are_null() -> None:
    assert run_column("FLAG", ["", " ", None]) == [(None, None)] * 3


@pytest.mark.parametrize("raw", ["YES", "no", "true", "false", "2", "X", "YN", "-1", "Y\x00", "Ｙ"])
def test_flag_unreadable(raw: str) -> None:
    assert code_of("FLAG", raw) == "flag_unreadable"


def test_a_char_1_column_not_declared_a_flag_stays_text() -> None:
    assert one("CHAR(1)", "Y") == "Y"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="YNTFyntf01 xX\t", max_size=3), min_size=1, max_size=20))
def test_flags_match_a_reference(texts: list[str]) -> None:
    truth = {"Y": True, "1": True, "T": True, "N": False, "0": False, "F": False}
    for text, (value, code) in zip(texts, run_column("FLAG", texts), strict=True):
        key = text.strip().upper()
        if key == "":
            assert (value, code) == (None, None)
        elif key in truth:
            assert (value, code) == (truth[key], None)
        else:
            assert (value, code) == (None, "flag_unreadable")
    for settled, fast, slow, code in fast_and_slow("FLAG", texts):
        if settled:
            assert (fast, code) == (slow, None)
