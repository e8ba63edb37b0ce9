"""The request bodies of a wave: every row once, in order, built ahead on a thread."""

import orjson
import polars as pl
import pytest

from syncflow_dagster.pipeline.bodies import BatchBodies, chunk_starts
from syncflow_dagster.stages.encode import upsert_line


def test_batch_bodies_cover_every_row_once_in_order() -> None:
    n_rows = 2345
    rows = pl.DataFrame(
        {
            "bk_hash": [f"{i:032x}" for i in range(n_rows)],
            "data_hash": ["h"] * n_rows,
            "n": list(range(n_rows)),
        }
    ).with_columns(
        pl.lit(None, dtype=pl.String).alias("_line"),
        (pl.col("n") % 250 < 100).alias("_blocked"),  # whole batches 0, 5, 10, … wait
    )

    line = pl.coalesce(pl.col("_line"), upsert_line(["n"], []))
    with BatchBodies(rows, line, 50, "b-1", per_chunk=7) as bodies:
        assert bodies.batches == 47
        seen = []
        for i in reversed(range(bodies.batches)):
            body, n = bodies.body(i)
            if n == 0:  # every record of this batch waits: nothing to send
                assert body == b"" and i % 5 in (0, 1)
                continue
            doc = orjson.loads(body)
            assert doc["batch_id"] == f"b-1-{i}" and len(doc["records"]) == n
            seen.append([r["data"]["n"] for r in doc["records"]])
    sent = sorted(x for batch in seen for x in batch)
    assert sent == [k for k in range(n_rows) if k % 250 >= 100]


def test_batch_bodies_raise_what_the_builder_hit() -> None:
    rows = pl.DataFrame({"bk_hash": ["0" * 32], "_blocked": [False]})
    line = pl.col("no_such_column")  # encoding fails on the builder thread
    with BatchBodies(rows, line, 50, "b-1") as bodies, pytest.raises(RuntimeError) as caught:
        bodies.body(0)
    assert isinstance(caught.value.__cause__, pl.exceptions.ColumnNotFoundError)


@pytest.mark.parametrize(
    ("batches", "per_chunk", "first", "starts"),
    [
        (0, 50, 2, [0]),
        (1, 50, 2, [0, 1]),
        (7, 50, 2, [0, 2, 6, 7]),
        (200, 50, 2, [0, 2, 6, 14, 30, 62, 112, 162, 200]),
        (20, 7, 2, [0, 2, 6, 13, 20]),
        (10, 3, 5, [0, 3, 6, 9, 10]),  # the first chunk is never above per_chunk
    ],
)
def test_chunks_start_small_and_double_up_to_their_size(
    batches: int, per_chunk: int, first: int, starts: list[int]
) -> None:
    assert chunk_starts(batches, per_chunk, first) == starts
