"""The ingest step against a real hub: rejections become dead letters with every form."""

from pathlib import Path

import orjson
import polars as pl
import pytest

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.pipeline import fetch
from syncflow_dagster.pipeline.delta import delta_step
from syncflow_dagster.pipeline.identity import identity_step
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.pipeline.transform import (
    check_against_hub,
    map_step,
    normalize_step,
    validate_step,
)
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub

TZ = "Europe/Berlin"


def test_a_record_the_hub_rejects_is_dead_lettered_with_raw_normalized_and_mapped_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "SPILL_ROWS", 1)  # the raw form comes back from the spill file
    catalog = load_catalog(ENTITIES_DIR)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    with (
        running_apismith(DatasetSpec(seed=4, work_orders=50, bad_fraction=0)) as api,
        running_schedulehub() as hub,
        ApiSmithClient(api.url, api.token) as source,
        ScheduleHubClient(hub.url, hub.token) as target,
    ):
        required = check_against_hub(catalog, "items", target.entities())
        s = fetch.fetch_step(catalog, "items", source, store, fetch.RunInfo("run-1"), "full", TZ)
        assert s.raw_spill is not None
        s = map_step(
            validate_step(normalize_step(s, catalog, TZ), catalog, TZ), catalog, TZ, required
        )
        assert s.raw.height == 0  # past map, the raw form waits on disk
        # The hub refuses a value our mapping let through (its rules are its own).
        victim = s.frame.item(0, "item_no")
        s = s.advance(
            "map",
            0,
            frame=s.frame.with_columns(
                pl.when(pl.col("item_no") == victim)
                .then(None)
                .otherwise(pl.col("uom"))
                .alias("uom")
            ),
        )
        s = resolve_step(delta_step(identity_step(s, catalog), store), catalog, store)
        s = ingest_step(s, catalog, target, store, 7, TZ)
        assert s.metrics["ingest_failed"] == 1
        s = track_step(s, catalog, store, TZ)
    [letter] = store.list_failed("items").iter_rows(named=True)
    assert (letter["stage"], letter["code"]) == ("ingest", "invalid_record")
    assert "uom" in letter["detail"]
    assert orjson.loads(letter["raw"])["ITEM_NO"] == victim
    assert orjson.loads(letter["normalized"])["ITEM_NO"] == victim
    assert orjson.loads(letter["mapped"])["uom"] is None
    assert letter["bk_hash"] is not None
    assert store.count_state("items") == s.metrics["inserted"] == 19
    assert s.raw_spill is not None and not s.raw_spill._dir.exists()
