"""The embedded default migrates itself on first use; PostgreSQL names the command to run."""

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from syncflow_dagster.edges.state import SchemaOutdatedError, StateStore, migrate
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.orchestration.resources import StateStoreResource
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import APISMITH_TOKEN, SCHEDULEHUB_TOKEN


def test_a_fresh_data_dir_runs_the_first_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("APISMITH_TOKEN", APISMITH_TOKEN)
    monkeypatch.setenv("SCHEDULEHUB_TOKEN", SCHEDULEHUB_TOKEN)
    data = tmp_path / "fresh"  # does not exist yet
    spec = DatasetSpec(seed=6, work_orders=40, bad_fraction=0)
    with (
        running_apismith(spec, token=APISMITH_TOKEN) as api,
        running_schedulehub(token=SCHEDULEHUB_TOKEN) as hub,
        dg.instance_for_test() as instance,
    ):
        settings = load_settings(apismith_url=api.url, schedulehub_url=hub.url, data_dir=data)
        defs = build_definitions(settings)
        result = defs.get_job_def("sync_items_job").execute_in_process(instance=instance)
        assert result.success
        store = StateStore(settings.state_db_url)
        [batch] = store.recent_batches("items")
        assert batch["status"] == "succeeded"
        assert (data / "syncflow.db").exists()
        assert hub.store.count("items") == spec.n_items
        store.dispose()
    StateStoreResource(sqlite_url=settings.sqlite_url).store.dispose()


def test_an_old_postgresql_schema_stops_with_the_command_to_run(pg_url: str) -> None:
    migrate(pg_url, "0002")
    store = StateStore(pg_url)
    with pytest.raises(SchemaOutdatedError) as error:
        store.ensure_schema()
    message = str(error.value)
    assert "is at revision 0002" in message and "uv run syncflow db upgrade" in message
    with store.engine.connect() as conn:  # nothing was changed behind the operator's back
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0002"
    store.dispose()


def test_an_empty_postgresql_database_says_it_has_no_schema(pg_url: str) -> None:
    store = StateStore(pg_url)
    with pytest.raises(SchemaOutdatedError, match=r"has no SyncFlow schema.*syncflow db upgrade"):
        store.ensure_schema()
    store.dispose()
