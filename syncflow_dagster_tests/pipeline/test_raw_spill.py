import polars as pl

from syncflow_dagster.pipeline.raw_spill import RawSpill
from syncflow_dagster.pipeline.slice import SyncSlice


def _raw(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"NO": [f"WO-{i}" for i in range(n)], "QTY": [str(i) for i in range(n)]}
    ).with_row_index("_row")


def test_spilled_rows_read_back_exactly_and_the_file_goes() -> None:
    raw = _raw(1000)
    spill = RawSpill(raw)
    spill.wait()
    path = spill._path
    assert path.exists()
    got = spill.rows(pl.Series([5, 999, 3]))
    assert got.sort("_row").equals(raw.filter(pl.col("_row").is_in([3, 5, 999])))
    assert spill.rows(pl.Series([], dtype=pl.UInt32)).schema == raw.schema
    spill.close()
    assert not path.parent.exists()


def test_slice_reads_raw_rows_from_memory_or_from_the_spill() -> None:
    raw = _raw(10)
    in_memory = SyncSlice(entity="e", batch_id=1, mode="full", source_columns={}, raw=raw)
    assert in_memory.raw_rows(pl.Series([2, 2, 7])).get_column("NO").to_list() == ["WO-2", "WO-7"]
    spilled = SyncSlice(
        entity="e",
        batch_id=1,
        mode="full",
        source_columns={},
        raw=raw.clear(),
        raw_spill=RawSpill(raw),
    )
    assert spilled.raw_rows(pl.Series([7])).get_column("NO").to_list() == ["WO-7"]
    assert spilled.raw_spill is not None
    spilled.raw_spill.close()
