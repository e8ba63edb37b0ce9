"""State frames at the store's API: checked, narrowed and sorted in the database's key order."""

import polars as pl
import pytest

from syncflow_dagster.edges.state.frames import state_frame

PREFIX = "0123456789abcdef"


def _rows(keys: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bk_hash": keys,
            "data_hash": ["ab" * 32] * len(keys),
            "rowversion": list(range(len(keys))),
            "extra": ["dropped"] * len(keys),
        }
    )


def test_rows_come_back_narrowed_and_in_bytewise_key_order() -> None:
    keys = ["ff" * 16, PREFIX + "1" * 16, "00" * 16, PREFIX + "0" * 16, "7f" * 16]
    out = state_frame(_rows(keys))
    assert out.columns == ["bk_hash", "data_hash", "rowversion"]
    # Keys that share the first 8 bytes are all kept; the order is bytewise
    # on what decides locality (the first 8 bytes).
    assert [k[:16] for k in out["bk_hash"]] == sorted(k[:16] for k in keys)
    assert sorted(out["bk_hash"]) == sorted(keys)


def test_distinct_keys_with_the_same_first_eight_bytes_are_accepted() -> None:
    keys = [PREFIX + f"{i:016x}" for i in range(1000)]
    assert state_frame(_rows(keys)).height == 1000


@pytest.mark.parametrize(
    "keys",
    [
        [PREFIX + "0" * 16, "aa" * 16, PREFIX + "0" * 16],  # a repeat whose prefix others share
        ["aa" * 16, "bb" * 16, "aa" * 16],
    ],
)
def test_a_repeated_key_is_refused(keys: list[str]) -> None:
    with pytest.raises(ValueError, match="duplicate bk_hash"):
        state_frame(_rows(keys))


def test_malformed_hashes_are_refused_before_sorting() -> None:
    with pytest.raises(ValueError, match="lowercase hex"):
        state_frame(_rows(["AA" * 16]))
    with pytest.raises(ValueError, match="lowercase hex"):
        state_frame(_rows(["aa" * 15]))
