import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal
from sqlalchemy import select

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.tables import erp_sync_state, sync_entities

from .conftest import state_rows


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("bk_hash")


def _last_batches(store: StateStore, entity: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(erp_sync_state.c.bk_hash, erp_sync_state.c.last_batch_id)
            .join(sync_entities, sync_entities.c.id == erp_sync_state.c.entity_id)
            .where(sync_entities.c.name == entity)
        )
        return {r.bk_hash: r.last_batch_id for r in rows}


def test_empty_entity_loads_empty_frames(store: StateStore) -> None:
    state = store.load_state("items")
    assert state.schema == pl.Schema(
        {"bk_hash": pl.String, "data_hash": pl.String, "rowversion": pl.Int64}
    )
    assert state.is_empty()
    assert store.load_keys("items").is_empty()
    assert store.load_versions("items").schema == pl.Schema(
        {"bk_hash": pl.String, "rowversion": pl.Int64}
    )
    assert store.load_versions("items").is_empty()
    assert store.count_state("items") == 0
    assert store.load_state_for("items", pl.Series([], dtype=pl.String)).is_empty()
    assert store.upsert_state("items", state, 1) == 0
    assert store.delete_state("items", pl.Series([], dtype=pl.String)) == 0


def test_upsert_inserts_updates_and_leaves_the_rest(store: StateStore) -> None:
    first = state_rows(300).with_columns(
        rowversion=pl.when(pl.col("rowversion") % 5 == 0).then(None).otherwise("rowversion")
    )
    assert store.upsert_state("items", first, batch_id=1) == 300
    assert_frame_equal(_sorted(store.load_state("items")), _sorted(first))
    # the versions are the state without its data hashes (null rowversions kept)
    assert_frame_equal(_sorted(store.load_versions("items")), _sorted(first.drop("data_hash")))

    # 100 updated (new data_hash / rowversion), 50 new, 200 untouched.
    updated = state_rows(100, salt="v2").with_columns(rowversion=pl.col("rowversion") + 1000)
    new = state_rows(50, offset=300)
    second = pl.concat([updated, new])
    assert store.upsert_state("items", second, batch_id=2) == 150
    expected = pl.concat([updated, first.slice(100), new])
    assert_frame_equal(_sorted(store.load_state("items")), _sorted(expected))
    assert store.count_state("items") == 350

    batches = _last_batches(store, "items")
    assert {batches[k] for k in second["bk_hash"]} == {2}
    assert {batches[k] for k in first["bk_hash"].slice(100)} == {1}

    # The same upsert again changes nothing.
    assert store.upsert_state("items", second, batch_id=2) == 150
    assert_frame_equal(_sorted(store.load_state("items")), _sorted(expected))
    assert _last_batches(store, "items") == batches


def test_entities_are_isolated(store: StateStore) -> None:
    rows = state_rows(20)
    store.upsert_state("items", rows, 1)
    store.upsert_state("work_orders", rows.head(5), 1)
    assert store.count_state("items") == 20
    assert store.count_state("work_orders") == 5
    assert store.delete_state("work_orders", rows["bk_hash"]) == 5
    assert store.count_state("items") == 20
    assert store.load_state_for("work_orders", rows["bk_hash"]).is_empty()


def test_load_state_for_keys_present_and_absent(store: StateStore) -> None:
    rows = state_rows(200)
    store.upsert_state("items", rows, 1)
    absent = state_rows(30, offset=10_000)["bk_hash"]
    present = rows["bk_hash"].gather(list(range(0, 200, 7)))
    asked = pl.concat([present, absent, present.head(3)])  # duplicates are harmless
    got = store.load_state_for("items", asked)
    expected = rows.filter(pl.col("bk_hash").is_in(present.implode()))
    assert_frame_equal(_sorted(got), _sorted(expected))
    assert store.load_state_for("items", absent).is_empty()
    assert_series_equal(
        store.existing_keys("items", asked).sort(), present.sort(), check_names=False
    )


@pytest.mark.parametrize("asked_share", [0.05, 0.9])  # PostgreSQL: probe by key / read all keys
def test_existing_keys_whichever_way_they_are_found(store: StateStore, asked_share: float) -> None:
    rows = state_rows(400)
    store.upsert_state("items", rows, 1)
    store.upsert_state("work_centers", state_rows(100, offset=5_000), 1)  # another entity
    n = int(400 * asked_share)
    present = rows["bk_hash"].head(n)
    other = state_rows(10, offset=5_000)["bk_hash"]  # has state, but of work_centers
    absent = state_rows(7, offset=9_000)["bk_hash"]
    found = store.existing_keys("items", pl.concat([present, other, absent, present.head(2)]))
    assert sorted(found.to_list()) == sorted(present.to_list())
    assert store.existing_keys("no_such_entity", present).is_empty()


def test_load_state_for_more_keys_than_one_sqlite_chunk(store: StateStore) -> None:
    rows = state_rows(1_300)
    store.upsert_state("items", rows, 1)
    got = store.load_state_for("items", rows["bk_hash"].slice(100, 1_100))
    assert_frame_equal(_sorted(got), _sorted(rows.slice(100, 1_100)))


def test_load_keys_and_delete(store: StateStore) -> None:
    rows = state_rows(500)
    store.upsert_state("items", rows, 1)
    assert_series_equal(store.load_keys("items").sort(), rows["bk_hash"].sort())
    gone = rows["bk_hash"].head(123)
    also_absent = state_rows(5, offset=9_000)["bk_hash"]
    assert store.delete_state("items", pl.concat([gone, also_absent])) == 123
    assert store.delete_state("items", gone) == 0
    assert store.count_state("items") == 377
    assert_frame_equal(_sorted(store.load_state("items")), _sorted(rows.slice(123)))


def test_duplicate_keys_in_one_upsert_are_rejected(store: StateStore) -> None:
    rows = state_rows(3)
    with pytest.raises(ValueError, match="duplicate bk_hash"):
        store.upsert_state("items", pl.concat([rows, rows.head(1)]), 1)
    with pytest.raises(ValueError, match="lacks column"):
        store.upsert_state("items", rows.drop("rowversion"), 1)
    assert store.count_state("items") == 0


def test_failed_upsert_writes_nothing(store: StateStore) -> None:
    store.upsert_state("items", state_rows(10), 1)
    bad = pl.concat(
        [state_rows(5, offset=10), state_rows(1, offset=20).with_columns(data_hash=pl.lit("zz"))]
    )
    with pytest.raises(ValueError):
        store.upsert_state("items", bad, 2)
    assert store.count_state("items") == 10


def test_entity_names_needing_escapes(store: StateStore) -> None:
    entity = "odd\tname\\with'quote"
    rows = state_rows(10)
    store.upsert_state(entity, rows, 1)  # first load: COPY straight into the table
    store.upsert_state(entity, state_rows(5, offset=10), 1)  # staged path
    assert store.count_state(entity) == 15
    assert store.load_state(entity).height == 15
    assert store.load_state_for(entity, rows["bk_hash"]).height == 10


def test_bulk_copy_paths_are_exact(pg_store: StateStore) -> None:
    """50k rows through both COPY-in paths and the binary COPY-out, compared row for row."""
    n = 50_000
    base = state_rows(n).with_columns(
        rowversion=pl.when(pl.col("rowversion") % 3 == 0)
        .then(None)
        .when(pl.col("rowversion") % 3 == 1)
        .then(-pl.col("rowversion"))  # negative and extreme values survive too
        .otherwise(pl.col("rowversion") * 1_000_000_000_000)
    )
    base = base.with_columns(
        rowversion=pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit(-(2**63), dtype=pl.Int64))
        .when(pl.int_range(pl.len()) == 2)
        .then(pl.lit(2**63 - 1, dtype=pl.Int64))
        .otherwise("rowversion")
    )
    pg_store.upsert_state("items", base, 1)  # direct COPY (entity empty)
    assert_frame_equal(_sorted(pg_store.load_state("items")), _sorted(base))

    changed = state_rows(20_000, offset=30_000, salt="v2")  # 20k updates
    added = state_rows(20_000, offset=n)  # 20k inserts
    pg_store.upsert_state("items", pl.concat([changed, added]), 2)  # staged path
    expected = pl.concat([base.head(30_000), changed, added])
    assert_frame_equal(_sorted(pg_store.load_state("items")), _sorted(expected))
    assert pg_store.count_state("items") == 70_000

    keys = expected["bk_hash"].sample(10_000, seed=1)
    got = pg_store.load_state_for("items", keys)
    assert_frame_equal(
        _sorted(got), _sorted(expected.filter(pl.col("bk_hash").is_in(keys.implode())))
    )
    assert_series_equal(pg_store.load_keys("items").sort(), expected["bk_hash"].sort())


def test_keys_stamped_through_a_batch(store: StateStore) -> None:
    old, new = state_rows(5), state_rows(3, offset=100)
    store.upsert_state("items", old, 7)
    store.upsert_state("items", new, 9)
    store.upsert_state("items", old.head(2), 11)  # re-stamped by a later batch
    stamped = store.keys_stamped_through("items", 8).sort()
    assert stamped.to_list() == sorted(old["bk_hash"].to_list()[2:])
    assert store.keys_stamped_through("items", 6).is_empty()
    assert store.keys_stamped_through("other", 100).is_empty()


def test_assume_new_copies_straight_and_falls_back_on_a_known_key(store: StateStore) -> None:
    store.upsert_state("items", state_rows(10), 1)
    fresh = state_rows(20, offset=10)
    assert store.upsert_state("items", fresh, 2, assume_new=True) == 20
    assert store.count_state("items") == 30
    # Not new after all: five keys exist with other hashes; the write must still be exact.
    mixed = pl.concat([state_rows(5, salt="v2"), state_rows(5, offset=100)])
    assert store.upsert_state("items", mixed, 3, assume_new=True) == 10
    assert store.count_state("items") == 35
    loaded = store.load_state_for("items", mixed["bk_hash"]).sort("bk_hash")
    assert_frame_equal(loaded, mixed.sort("bk_hash"), check_column_order=False)
    assert set(_last_batches(store, "items").values()) == {1, 2, 3}
