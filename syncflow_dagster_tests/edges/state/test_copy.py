"""The PostgreSQL COPY plumbing under the bulk paths, on a real server."""

import random
import threading
from collections.abc import Iterator

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from syncflow_dagster.edges.state import StateStore, binary
from syncflow_dagster.edges.state.copyout import copy_out, copy_out_stream
from syncflow_dagster.edges.state.pg_state import STATE_COLUMNS, STATE_FIELDS
from syncflow_dagster.edges.state.pgcopy import (
    copy_in,
    hex_field,
    int8_field,
    to_copy_binary,
    to_copy_csv,
    to_copy_text,
)

from .conftest import state_rows


def _select(entity: str = "items") -> str:
    return (
        f"SELECT {STATE_COLUMNS} FROM erp_sync_state s JOIN sync_entities e"
        f" ON e.id = s.entity_id WHERE e.name = '{entity}'"
    )


def test_copy_in_streams_slices(pg_store: StateStore) -> None:
    frame = pl.DataFrame(
        {
            "n": list(range(23)),
            "t": [None, "", 'a "quoted", text\nwith lines', *[f"x{i}" for i in range(20)]],
        }
    )
    with pg_store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE c (n int, t text)")
        conn.exec_driver_sql("CREATE TEMP TABLE x (n int, t text)")
        copy_in(conn, "COPY c FROM STDIN (FORMAT csv)", frame, to_copy_csv, chunk_rows=7)
        copy_in(conn, "COPY x (n) FROM STDIN", frame.select("n"), to_copy_text, chunk_rows=5)
        csv_rows = conn.exec_driver_sql("SELECT n, t FROM c ORDER BY n").fetchall()
        text_rows = conn.exec_driver_sql("SELECT n FROM x ORDER BY n").fetchall()
    assert csv_rows == list(frame.iter_rows())  # NULL and "" stay distinct
    assert [r[0] for r in text_rows] == list(range(23))


def test_read_binary_in_chunks_matches_one_piece(
    pg_store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = state_rows(20_000)
    pg_store.upsert_state("items", rows, 1)
    with pg_store.engine.begin() as conn:
        whole = binary.read_binary(conn, _select(), STATE_FIELDS)
        monkeypatch.setattr(binary, "_CHUNK_BYTES", 4096)
        chunked = binary.read_binary(conn, _select(), STATE_FIELDS)
    assert whole.height == 20_000
    assert_frame_equal(whole, chunked)


def test_read_binary_reassembles_any_split(
    pg_store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks cut anywhere (mid-header, mid-row, mid-trailer) parse the same."""
    pg_store.upsert_state("items", state_rows(3_000), 1)
    with pg_store.engine.begin() as conn:
        blob = copy_out(conn, f"COPY ({_select()}) TO STDOUT (FORMAT binary)")
        expected = binary.read_binary(conn, _select(), STATE_FIELDS)
    rng = random.Random(7)
    cuts = sorted({5, 20, len(blob) - 1, *(rng.randrange(len(blob)) for _ in range(60))})

    def split(_conn: object, _sql: str, _chunk: int) -> Iterator[bytes]:
        start = 0
        for cut in [*cuts, len(blob)]:
            yield blob[start:cut]
            start = cut

    monkeypatch.setattr(binary, "copy_out_stream", split)
    assert_frame_equal(binary.read_binary(None, "", STATE_FIELDS), expected)  # type: ignore[arg-type]

    monkeypatch.setattr(binary, "copy_out_stream", lambda *_: (part for part in [blob[:-1]]))
    with pytest.raises(ValueError, match="truncated"):
        binary.read_binary(None, "", STATE_FIELDS)  # type: ignore[arg-type]


def test_read_binary_rejects_a_different_layout(pg_store: StateStore) -> None:
    pg_store.upsert_state("items", state_rows(10), 1)
    with pg_store.engine.begin() as conn, pytest.raises(ValueError):
        # rowversion (int8) where data_hash (32 bytes) is expected
        binary.read_binary(
            conn,
            "SELECT bk_hash, rowversion, rowversion, false FROM erp_sync_state",
            STATE_FIELDS,
        )


def test_copy_out_error_raises_and_leaves_the_connection_usable(pg_store: StateStore) -> None:
    pg_store.upsert_state("items", state_rows(2_000), 1)
    sql = (
        "COPY (SELECT 1 / (row_number() OVER () - 1500)::int FROM erp_sync_state)"
        " TO STDOUT (FORMAT binary)"
    )
    for _ in range(3):  # more often than the pool has connections
        with pytest.raises(psycopg.errors.DivisionByZero), pg_store.engine.begin() as conn:
            copy_out(conn, sql)
        with pytest.raises(psycopg.errors.UndefinedTable), pg_store.engine.begin() as conn:
            copy_out(conn, "COPY (SELECT * FROM nowhere) TO STDOUT")
    assert pg_store.load_state("items").height == 2_000


def test_abandoned_stream_drops_its_connection(pg_store: StateStore) -> None:
    pg_store.upsert_state("items", state_rows(50_000), 1)
    with pytest.raises(RuntimeError), pg_store.engine.begin() as conn:
        for _chunk in copy_out_stream(
            conn, f"COPY ({_select()}) TO STDOUT (FORMAT binary)", chunk_bytes=1
        ):
            raise RuntimeError("consumer gave up")
    assert pg_store.count_state("items") == 50_000


def test_concurrent_first_loads_of_one_entity(pg_store: StateStore) -> None:
    """Two writers racing on an empty entity: the lock makes the second an upsert."""
    first = state_rows(30_000)
    second = pl.concat([state_rows(10_000, offset=20_000, salt="b"), state_rows(5_000, 30_000)])
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def write(frame: pl.DataFrame, batch: int) -> None:
        try:
            barrier.wait()
            pg_store.upsert_state("items", frame, batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(first, 1)),
        threading.Thread(target=write, args=(second, 2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pg_store.count_state("items") == 35_000
    state = pg_store.load_state("items")
    overlap = state.join(second.head(10_000), on="bk_hash", suffix="_b")
    assert overlap.height == 10_000
    # whichever ran last wins, for all the overlapping keys at once
    winners = (overlap["data_hash"] == overlap["data_hash_b"]).unique().to_list()
    assert len(winners) == 1


def test_a_few_staged_keys_probe_the_primary_key_without_statistics(pg_store: StateStore) -> None:
    # Right after a first load the state has no statistics; the planner then takes
    # the entity for a few rows and would hash all of it to find a handful of keys.
    rows = state_rows(20_000)
    pg_store.upsert_state("items", rows, batch_id=1)
    keys = rows.get_column("bk_hash").head(50)
    with pg_store.engine.begin() as conn:
        no_statistics = conn.exec_driver_sql(
            "SELECT reltuples < 0 FROM pg_class WHERE relname = 'erp_sync_state'"
        ).scalar_one()
        entity_id = conn.exec_driver_sql(
            "SELECT id FROM sync_entities WHERE name = 'items'"
        ).scalar_one()
        with pg_store._pg_keys(conn, keys) as staged:
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    f"EXPLAIN SELECT s.bk_hash FROM erp_sync_state s JOIN {staged} k"
                    f" USING (bk_hash) WHERE s.entity_id = {entity_id}"
                )
            )
    assert no_statistics, "the state must not have statistics yet for this case"
    assert "Nested Loop" in plan and "pk_erp_sync_state" in plan, plan
    assert pg_store.load_state_for("items", keys).height == 50


def test_state_rows_copy_in_binary_format_with_nulls_and_extreme_integers(
    pg_store: StateStore,
) -> None:
    rows = state_rows(5).with_columns(
        rowversion=pl.Series([None, -1, 0, 2**63 - 1, -(2**63)], dtype=pl.Int64)
    )
    pg_store.upsert_state("items", rows, batch_id=2**40)
    assert_frame_equal(pg_store.load_state("items").sort("bk_hash"), rows.sort("bk_hash"))
    changed = rows.with_columns(data_hash=pl.lit("0" * 64), rowversion=pl.lit(7, pl.Int64))
    pg_store.upsert_state("items", changed, batch_id=3)  # the staging path, binary too
    assert_frame_equal(pg_store.load_state("items").sort("bk_hash"), changed.sort("bk_hash"))
    with pg_store.engine.begin() as conn:
        stamps = conn.exec_driver_sql(
            "SELECT DISTINCT s.last_batch_id, e.name FROM erp_sync_state s"
            " JOIN sync_entities e ON e.id = s.entity_id"
        ).all()
    assert [tuple(r) for r in stamps] == [(3, "items")]


def test_binary_rows_refuse_a_null_field() -> None:
    render = to_copy_binary([hex_field("bk_hash", 16), int8_field("rowversion")])
    ok = pl.DataFrame(
        {"bk_hash": ["ab" * 16], "rowversion": [None]}, schema_overrides={"rowversion": pl.Int64}
    )
    assert render(ok) == bytes.fromhex("000200000010" + "ab" * 16 + "ffffffff")
    with pytest.raises(ValueError, match="null"):
        render(ok.with_columns(bk_hash=pl.lit(None, pl.String)))
