from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from syncflow_dagster.edges.state import HashFormatError, StateStore
from syncflow_dagster.edges.state.tables import erp_sync_state, sync_batches, sync_entities
from syncflow_dagster.edges.state.types import check_hex, hex_to_bytes

BK = "0123456789abcdef0123456789abcdef"
DATA = "f" * 64


def _items_id(store: StateStore) -> int:
    with store.engine.begin() as conn:
        conn.execute(sync_entities.insert().values(name="items"))
        return int(conn.execute(select(sync_entities.c.id)).scalar_one())


def test_hashes_round_trip_as_hex_through_core(store: StateStore) -> None:
    entity_id = _items_id(store)
    with store.engine.begin() as conn:
        conn.execute(
            erp_sync_state.insert().values(
                entity_id=entity_id, bk_hash=BK, data_hash=DATA, rowversion=None, last_batch_id=1
            )
        )
        row = conn.execute(select(erp_sync_state)).one()
    assert (row.bk_hash, row.data_hash, row.rowversion) == (BK, DATA, None)
    assert store.load_state("items").rows() == [(BK, DATA, None)]


def test_hashes_are_stored_compactly(store: StateStore) -> None:
    store.upsert_state(
        "items", pl.DataFrame({"bk_hash": [BK], "data_hash": [DATA], "rowversion": [1]}), 1
    )
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            sql = (
                "SELECT pg_typeof(bk_hash)::text, octet_length(data_hash),"
                " pg_column_size(bk_hash) FROM erp_sync_state"
            )
            assert conn.exec_driver_sql(sql).one() == ("uuid", 32, 16)
        else:
            sql = "SELECT typeof(bk_hash), length(bk_hash), length(data_hash) FROM erp_sync_state"
            assert conn.exec_driver_sql(sql).one() == ("blob", 16, 32)


@pytest.mark.parametrize(
    "bad",
    [BK.upper(), BK[:-1], BK + "0", "g" * 32, "0123456789abcdef-0123456789abcde", ""],
)
def test_malformed_bk_hash_is_rejected(store: StateStore, bad: str) -> None:
    frame = pl.DataFrame({"bk_hash": [bad], "data_hash": [DATA], "rowversion": [1]})
    with pytest.raises(HashFormatError, match="bk_hash"):
        store.upsert_state("items", frame, 1)
    with pytest.raises(HashFormatError):
        store.load_state_for("items", pl.Series([bad]))
    with pytest.raises(StatementError), store.engine.begin() as conn:  # Core refuses it too
        conn.execute(
            erp_sync_state.insert().values(
                entity_id=1, bk_hash=bad, data_hash=DATA, last_batch_id=1
            )
        )
    assert store.count_state("items") == 0


def test_uppercase_data_hash_is_rejected(store: StateStore) -> None:
    frame = pl.DataFrame({"bk_hash": [BK], "data_hash": [DATA.upper()], "rowversion": [1]})
    with pytest.raises(HashFormatError, match="data_hash"):
        store.upsert_state("items", frame, 1)


def test_check_hex_reports_count_and_first_bad_value() -> None:
    series = pl.Series(["a" * 32, "B" * 32, None, "c" * 31])
    with pytest.raises(HashFormatError, match=r"3 value\(s\).*'B{32}'"):
        check_hex(series, 16, "bk_hash")
    check_hex(pl.Series(["a" * 32, None]), 16, "bk_hash", nullable=True)
    assert hex_to_bytes("00" * 16, 16, "bk_hash") == bytes(16)


def test_timestamps_round_trip_as_aware_utc(store: StateStore) -> None:
    berlin = timezone(timedelta(hours=2))
    started = datetime(2024, 7, 1, 21, 30, 15, 123456, tzinfo=berlin)
    with store.engine.begin() as conn:
        conn.execute(
            sync_batches.insert().values(
                entity="items", run_id="r", mode="full", status="running", started_at=started
            )
        )
        got = conn.execute(select(sync_batches.c.started_at)).scalar_one()
    assert got == started
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got == datetime(2024, 7, 1, 19, 30, 15, 123456, tzinfo=UTC)


def test_naive_timestamps_are_rejected(store: StateStore) -> None:
    with pytest.raises(StatementError, match="naive"), store.engine.begin() as conn:
        conn.execute(
            sync_batches.insert().values(
                entity="items", run_id="r", mode="full", started_at=datetime(2024, 1, 1)
            )
        )
