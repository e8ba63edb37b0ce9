import polars as pl

from syncflow_dagster.stages.dead_letters import dead_letters, letters_to_close


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
