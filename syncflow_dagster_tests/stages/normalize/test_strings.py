import unicodedata

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster_tests.stages.normalize.helpers import code_of, fast_and_slow, one, run_column

CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
# What cleaning trims off both ends: whitespace and the byte order mark.
EDGES = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\ufeff"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("WO-1001", "WO-1001"),
        ("  WO-1001  ", "WO-1001"),
        ("\tWO-1001\t", "WO-1001"),
        ("\u00a0WO-1001\u00a0", "WO-1001"),
        ("\u2003\u3000WO-1001\u202f\u205f", "WO-1001"),
        ("WO-\x011001\x07", "WO-1001"),
        ("\x85WO\x9f-1001", "WO-1001"),
        ("line 1\r\nline 2", "line 1line 2"),
        ("Cafe\u0301", "Caf\u00e9"),
        ("inner  \u00a0 spaces stay", "inner  \u00a0 spaces stay"),
        ("\ufeffWO-1001", "WO-1001"),
        ("WO-1001\ufeff", "WO-1001"),
        (" \ufeff\u00a0WO-1001\t\ufeff ", "WO-1001"),
        ("WO\ufeff-1001", "WO\ufeff-1001"),
        ("[urgent] call back", "[urgent] call back"),
        ("{draft}", "{draft}"),
        ("[1, 2", "[1, 2"),
    ],
)
def test_varchar2_cleaning(raw: str, clean: str) -> None:
    assert one("VARCHAR2(40)", raw) == clean


@pytest.mark.parametrize("raw", ["", " ", "   \t ", "\u00a0\u3000", "\x01\x1f", " \x07 ", "\ufeff"])
def test_empty_or_whitespace_only_is_null(raw: str) -> None:
    assert one("VARCHAR2(10)", raw) is None
    assert one("CHAR(8)", raw) is None


def test_json_null_is_null() -> None:
    assert run_column("VARCHAR2(10)", [None]) == [(None, None)]


def test_char_loses_its_padding() -> None:
    assert one("CHAR(8)", "PL01    ") == "PL01"
    assert one("CHAR(8)", "  PL01  ") == "PL01"
    assert one("CHAR(8)", "PLANNER1") == "PLANNER1"
    assert one("CHAR(3)", "AB\u0301 ") == "AB\u0301"  # no precomposed B-acute: 3 code points


def test_length_is_checked_after_cleaning() -> None:
    assert one("VARCHAR2(3)", "  abc  ") == "abc"
    assert one("VARCHAR2(3)", "a\x02b\x01c") == "abc"
    assert one("VARCHAR2(4)", "Cafe\u0301") == "Caf\u00e9"  # 5 code points, 4 characters in NFC
    assert one("CHAR(8)", "PL01            ") == "PL01"
    assert one("VARCHAR2(3)", "äöü") == "äöü"  # characters, not UTF-8 bytes
    assert one("VARCHAR2(3 BYTE)", "äöü") == "äöü"


@pytest.mark.parametrize(
    ("type_text", "raw"),
    [
        ("VARCHAR2(3)", "abcd"),
        ("VARCHAR2(3)", " ab cd "),
        ("VARCHAR2(3)", "äöüß"),
        ("CHAR(2)", "ABC"),
        ("VARCHAR2(1)", "e\u0301x"),
    ],
)
def test_string_too_long(type_text: str, raw: str) -> None:
    assert code_of(type_text, raw) == "string_too_long"


@pytest.mark.parametrize("type_text", ["VARCHAR2(10)", "CHAR(10)"])
@pytest.mark.parametrize("raw", ["ab\x00cd", "\x00", "WO-1\x00", "\x00 "])
def test_text_holding_nul_fails(type_text: str, raw: str) -> None:
    # The fetch reads a lone surrogate escape ("ab\ud800cd") as NUL: not text to clean away.
    assert code_of(type_text, raw) == "string_nul"


@pytest.mark.parametrize("type_text", ["VARCHAR2(40)", "CHAR(40)"])
@pytest.mark.parametrize("raw", ['["a", "b"]', '{"k": 1}', "[]", "{}", '[1, {"b": null}]'])
def test_a_json_array_or_object_is_not_a_scalar(type_text: str, raw: str) -> None:
    assert code_of(type_text, raw) == "value_not_scalar"


def test_a_byte_order_mark_does_not_make_a_second_key() -> None:
    values = ["WO-1001", "\ufeffWO-1001", "WO-1001\ufeff"]
    assert [value for value, _ in run_column("VARCHAR2(20)", values)] == ["WO-1001"] * 3


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\u0301", "e", "\u00e9"]),
        st.sampled_from(["\ufeff", "[", "]", "{", "}", '"', ",", ":", "1"]),
        st.sampled_from(CONTROLS),
        st.characters(codec="utf-8"),
    ),
    max_size=20,
)


def is_clean(value: str) -> bool:
    return (
        value == value.strip(EDGES)
        and not any(unicodedata.category(c) == "Cc" for c in value)
        and unicodedata.is_normalized("NFC", value)
        and value != ""
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=10))
def test_cleaning_is_idempotent_and_leaves_clean_text(texts: list[str]) -> None:
    once = [value for value, _ in run_column("VARCHAR2(400)", texts)]
    for value in once:
        assert value is None or is_clean(value), repr(value)
    twice = [value for value, _ in run_column("VARCHAR2(400)", once)]
    assert twice == once


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=10))
def test_cleaning_matches_a_plain_python_reference(texts: list[str]) -> None:
    def reference(text: str) -> tuple[str | None, str | None]:
        if _is_json_container(text):
            return None, "value_not_scalar"
        if "\x00" in text:
            return None, "string_nul"
        kept = "".join(c for c in text if unicodedata.category(c) != "Cc")
        cleaned = unicodedata.normalize("NFC", kept).strip(EDGES)
        return cleaned or None, None

    got = run_column("VARCHAR2(400)", texts)
    assert got == [reference(t) for t in texts]


def _is_json_container(text: str) -> bool:
    """Whether ``text`` is a JSON array or object from its first to its last character."""
    if (text[:1], text[-1:]) not in {("[", "]"), ("{", "}")}:
        return False
    try:
        return isinstance(orjson.loads(text), list | dict)
    except orjson.JSONDecodeError:
        return False


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=10))
@pytest.mark.parametrize("type_text", ["VARCHAR2(5)", "CHAR(5)"])
def test_fast_path_agrees_with_full_cleaning(type_text: str, texts: list[str]) -> None:
    for text, (settled, fast, slow, code) in zip(
        texts, fast_and_slow(type_text, texts), strict=True
    ):
        if settled:
            assert code is None, f"{text!r}: fast path took what cleaning refuses ({code})"
            assert fast == slow, f"{text!r}: fast {fast!r} != clean {slow!r}"


def test_latin_text_takes_the_fast_path_and_the_rest_is_cleaned() -> None:
    settled = ["Société Générale d'Équipement", "Prüfprotokoll beilegen", "a\u00a0b", "ǅ ʼ ˿"]
    unsettled = ["\u00a0x", "x\u00a0", "e\u0301", "\x85x", "x\u2003", " x", "x ", "a\tb", "Ω"]
    results = fast_and_slow("VARCHAR2(40)", settled + unsettled)
    assert [r[0] for r in results] == [True] * len(settled) + [False] * len(unsettled)
    for text, (_, fast, slow, code) in zip(settled, results, strict=False):
        assert fast == slow == text
        assert code is None
