import polars as pl

from syncflow_dagster.stages.delta import (
    OP,
    classify,
    compare_with_state,
    find_deletes,
    key_set,
    rows_mask,
)


def test_classify_insert_update_unchanged() -> None:
    records = pl.DataFrame({"bk_hash": ["a", "b", "c"], "data_hash": ["1", "2", "3"]})
    state = pl.DataFrame(
        {"bk_hash": ["b", "c", "z"], "data_hash": ["2", "9", "0"], "rowversion": [1, 2, 3]}
    )
    out = classify(records, state)
    assert dict(zip(out["bk_hash"], out[OP], strict=True)) == {
        "a": "insert",
        "b": "unchanged",
        "c": "update",
    }
    assert out.columns == ["bk_hash", "data_hash", OP]


def test_deletes_are_state_keys_no_longer_listed() -> None:
    state = pl.DataFrame(
        {"bk_hash": ["a", "b", "c", "d"], "data_hash": ["1"] * 4, "rowversion": [1, 2, 3, 4]}
    )
    present = key_set(pl.Series(["a", "c"]))
    fetched = pl.Series(["d"])  # fetched but gone from the listing: left for the next run
    out = find_deletes(present, state, fetched)
    assert out["bk_hash"].to_list() == ["b"]
    assert out[OP].to_list() == ["delete"]
    assert out.columns == ["bk_hash", "rowversion", OP]


def test_key_sets_are_128_bit_integers_of_the_hashes() -> None:
    hashes = pl.Series(["0123456789abcdef0123456789abcdef", "f" * 32])
    keys = key_set(hashes)
    assert keys.dtype == pl.UInt128
    assert keys.to_list() == [int(h, 16) for h in hashes]


def test_no_state_means_all_inserts_and_no_deletes() -> None:
    records = pl.DataFrame({"bk_hash": ["a"], "data_hash": ["1"]})
    empty = pl.DataFrame(
        schema={"bk_hash": pl.String, "data_hash": pl.String, "rowversion": pl.Int64}
    )
    assert classify(records, empty)[OP].to_list() == ["insert"]
    assert (
        find_deletes(key_set(pl.Series(["a"])), empty, pl.Series([], dtype=pl.String)).height == 0
    )


def test_compare_settles_same_version_current_mapping_single_copy_and_finds_gone() -> None:
    keys = pl.DataFrame(
        {"_row": [0, 1, 2, 3, 4, 5], "bk_hash": ["a", "b", "c", "d", "d", "e"]},
        schema_overrides={"_row": pl.UInt32},
    )
    rowversions = pl.Series([10, 20, 30, 40, 41, None], dtype=pl.Int64)
    state = pl.DataFrame(
        {
            "bk_hash": ["a", "b", "c", "d", "e", "gone"],
            "data_hash": ["x"] * 6,
            "rowversion": [10, 19, 30, 41, None, 7],
        }
    )
    stale = pl.Series(["c"])
    # a: same version -> settled; b: newer in the ERP; c: mapped under an old mapping;
    # d: fetched twice (the validate stage must see both); e: no rowversion to compare.
    compared = compare_with_state(keys, rowversions, state, stale, complete=True)
    assert compared.settled.to_list() == [0]
    assert compared.gone is not None
    assert compared.gone.to_dicts() == [{"bk_hash": "gone", "rowversion": 7, OP: "delete"}]
    assert compare_with_state(keys, rowversions, state, stale, complete=False).gone is None


def test_rows_mask() -> None:
    assert rows_mask(pl.Series([1, 3], dtype=pl.UInt32), 5).to_list() == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert rows_mask(pl.Series([], dtype=pl.UInt32), 0).to_list() == []
