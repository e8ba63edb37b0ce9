import polars as pl

from syncflow_dagster.stages.dead_letters import (
    DEAD_LETTER_SCHEMA,
    dead_letters,
    empty_dead_letters,
    letters_to_close,
    unreadable_letters,
)


def test_dead_letters_carry_every_form_and_the_row() -> None:
    raw = pl.DataFrame({"NO": ["A", "B"], "QTY": ["1", "x"], "RV": ["7", "8"]}).with_row_index(
        "_row"
    )
    failures = pl.DataFrame(
        {"_row": [1], "code": ["number_unreadable"], "detail": ["QTY: 'x'"]},
        schema_overrides={"_row": pl.UInt32},
    )
    normalized = pl.DataFrame(
        {"_row": [1], "NO": ["B"], "QTY": [None]}, schema_overrides={"_row": pl.UInt32}
    )
    letters = dead_letters("validate", failures, raw, ["NO"], "RV", normalized=normalized)
    row = letters.row(0, named=True)
    assert row["_row"] == 1 and row["stage"] == "validate" and row["rowversion"] == 8
    assert row["source_key"] == '{"NO":"B"}' and row["raw"] == '{"NO":"B","QTY":"x","RV":"8"}'
    assert row["normalized"] == '{"NO":"B","QTY":null}' and row["mapped"] is None


def test_letters_to_close_supersedes_the_same_version_and_recovers_fine_keys() -> None:
    open_letters = pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "bk_hash": ["a", "b", None, "d"],
            "source_key": ['{"K":"A"}', '{"K":"B"}', '{"K":""}', '{"K":"D"}'],
            "rowversion": [10, 20, 30, 40],
        }
    )
    new = pl.DataFrame(
        {
            "bk_hash": ["a", "b", None],
            "source_key": ['{"K":"A"}', '{"K":"B"}', '{"K":""}'],
            "rowversion": [10, 21, 30],
        }
    )
    superseded, recovered = letters_to_close(open_letters, new, pl.Series(["d", "z"]))
    # a: same version again; the unreadable key matches on its raw form; b is a new version.
    assert sorted(superseded.to_list()) == [1, 3]
    assert recovered.to_list() == [4]
    assert letters_to_close(open_letters, new.clear(), None)[1].len() == 0


def test_unreadable_lines_become_fetch_letters_with_the_line_as_raw_form() -> None:
    bad_lines = pl.DataFrame(
        {
            "line": ['{"NO":"A","QTY":NaN,"RV":7}', "[1, 2]"],
            "position": [3, 9],
            "code": ["non_finite_number", "not_an_object"],
            "detail": ["NaN ... at character 15", "an array, not a record"],
            "source_key": ['{"NO":"A"}', '{"NO":null}'],
            "rowversion": [7, None],
        },
        schema_overrides={"rowversion": pl.Int64},
    )
    letters = unreadable_letters(bad_lines)
    assert letters.schema == pl.Schema(DEAD_LETTER_SCHEMA)
    first, second = letters.to_dicts()
    assert first == {
        "_row": None,
        "bk_hash": None,
        "source_key": '{"NO":"A"}',
        "rowversion": 7,
        "stage": "fetch",
        "code": "non_finite_number",
        "detail": "NaN ... at character 15",
        "raw": '{"NO":"A","QTY":NaN,"RV":7}',
        "normalized": None,
        "mapped": None,
        "error_kind": None,  # permanent, as track records it
    }
    assert second["raw"] == "[1, 2]" and second["rowversion"] is None
    assert unreadable_letters(bad_lines.clear()).equals(empty_dead_letters())
