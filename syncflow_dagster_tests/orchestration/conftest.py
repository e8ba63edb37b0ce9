"""End-to-end harness: both emulators over real HTTP, state in PostgreSQL, runs through Dagster.

``make_harness(spec, ...)`` starts an APISmith emulator over a generated ERP, a
ScheduleHub emulator, migrates a fresh state database and builds SyncFlow's
Definitions against them; the harness runs jobs in process and reconciles the
hub (read back over HTTP) with the ERP's ground truth.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from syncflow_dagster.config.loader import EntityCatalog
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.orchestration.factories.sync_job import sync_all_run_config, sync_job_name
from syncflow_dagster.orchestration.resources import EntityCatalogResource, StateStoreResource
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.settings import Settings, load_settings
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith
from syncflow_dagster.testing.reconcile import Reconciliation, expected_records, reconcile
from syncflow_dagster.testing.schedulehub import RunningScheduleHub, running_schedulehub

APISMITH_TOKEN = "apismith-e2e-secret-token"
SCHEDULEHUB_TOKEN = "schedulehub-e2e-secret-token"
PARTITION = "2026-11-25"
STAGES = (
    "fetch",
    "normalize",
    "validate",
    "map",
    "identity",
    "delta",
    "resolve",
    "ingest",
    "track",
)
"""The nine ops of every sync job, in order."""
SMALL = DatasetSpec(seed=5, work_orders=600, bad_fraction=0.02)
"""The default ERP of a test: a few hundred work orders, a few bad rows of every kind."""

FAST_RETRIES: dict[str, Any] = {
    "retry_delay_seconds": 0.01,
    "max_retry_delay_seconds": 0.2,
    "max_retries": 8,
}

MakeHarness = Callable[..., "SyncHarness"]


def fetch_config(entity: str, mode: str = "configured") -> dict[str, Any]:
    """Run config of ``sync_<entity>_job`` in ``mode`` (the job knows its entity)."""
    del entity
    return {"ops": {"fetch": {"config": {"mode": mode}}}}


@dataclass
class SyncHarness:
    """Everything a test needs to run SyncFlow's jobs and check what they did."""

    api: ApiSmithHandle
    hub: RunningScheduleHub
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    store: StateStore
    hub_client: ScheduleHubClient
    monkeypatch: pytest.MonkeyPatch
    database_url: str
    results: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    @cached_property
    def catalog(self) -> EntityCatalog:
        """The entity catalog the definitions were built from."""
        resource = (self.defs.resources or {})["entities"]
        assert isinstance(resource, EntityCatalogResource)
        return resource.catalog

    @property
    def entities(self) -> list[str]:
        """Entity names, parents first."""
        return self.catalog.parent_first()

    @cached_property
    def required(self) -> dict[str, set[str]]:
        """Per entity, the fields the hub requires (from its schema endpoint)."""
        schemas = self.hub_client.entities()
        return {
            cfg.name: {n for n, f in schemas[cfg.target.entity].fields.items() if f.required}
            for cfg in self.catalog
        }

    def run_job(
        self,
        name: str,
        run_config: dict[str, Any] | None = None,
        *,
        raise_on_error: bool = True,
        partition_key: str = PARTITION,
    ) -> dg.ExecuteInProcessResult:
        """Execute one job in process on the test instance."""
        # The state resource reads DATABASE_URL when a run starts (it is a secret).
        self.monkeypatch.setenv("DATABASE_URL", self.database_url)
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        job = self.defs.get_job_def(name)
        result = job.execute_in_process(
            run_config={**(run_config or {}), **quiet},
            instance=self.instance,
            partition_key=partition_key if job.partitions_def is not None else None,
            raise_on_error=raise_on_error,
        )
        self.results.append(result)
        return result

    def run_entity(
        self, entity: str, mode: str = "configured", *, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        """Run ``sync_<entity>_job`` in the given mode."""
        return self.run_job(
            sync_job_name(entity), fetch_config(entity, mode), raise_on_error=raise_on_error
        )

    def run_all(self, mode: str | None = None) -> dg.ExecuteInProcessResult:
        """Run ``sync_all_job`` (every chain, then the retry ops)."""
        return self.run_job("sync_all_job", sync_all_run_config(self.catalog, mode=mode))

    def sync_parent_first(self, mode: str = "configured") -> dict[str, dict[str, Any]]:
        """Run every entity's job, parents first; the batch each run recorded."""
        batches = {}
        for entity in self.entities:
            result = self.run_entity(entity, mode)
            assert result.success
            batches[entity] = self.last_batch(entity)
        return batches

    def last_batch(self, entity: str) -> dict[str, Any]:
        """The entity's latest batch row in sync_batches."""
        return self.store.recent_batches(entity, limit=1)[0]

    def batches_of_run(self, run_id: str) -> list[dict[str, Any]]:
        """The batches a Dagster run recorded, oldest first."""
        rows = self.store.recent_batches(limit=1000)
        return sorted((b for b in rows if b["run_id"] == run_id), key=lambda b: b["id"])

    def reconcile(self, entities: list[str] | None = None) -> Reconciliation:
        """Compare the hub with the ERP's ground truth (all entities, or these)."""
        expected = expected_records(
            self.api.dataset, self.catalog, self.settings.erp_timezone, self.required
        )
        return reconcile(self.hub_client, self.catalog, expected, entities=entities)

    def hub_hashes(self, entity: str) -> dict[str, str]:
        """external_id -> data_hash of every record the hub holds for ``entity``."""
        hub_entity = self.catalog[entity].target.entity
        return {r["external_id"]: r["data_hash"] for r in self.hub_client.records(hub_entity)}

    def reconfigured(self, entities_dir: Path) -> "SyncHarness":
        """The same ERP, hub, state DB and Dagster instance under another entity configuration."""
        settings = load_settings(
            **{**self.settings.model_dump(), "entities_dir": entities_dir},
        )
        return replace(self, settings=settings, defs=build_definitions(settings), results=[])

    def hub_count(self, entity: str) -> int:
        """How many records the hub stores for ``entity`` (in-process read)."""
        return self.hub.store.count(self.catalog[entity].target.entity)


@pytest.fixture
def make_harness(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeHarness]:
    """A factory of harnesses (one per call; all torn down after the test).

    Keyword arguments: ``spec`` (DatasetSpec), ``api_faults`` / ``hub_faults``
    (fault specs), ``entities_dir``, ``database_url`` (default: the test's fresh
    PostgreSQL database); any other keyword is a setting.
    """
    monkeypatch.setenv("APISMITH_TOKEN", APISMITH_TOKEN)
    monkeypatch.setenv("SCHEDULEHUB_TOKEN", SCHEDULEHUB_TOKEN)
    stack = ExitStack()
    urls: list[str] = []

    def make(
        spec: DatasetSpec = SMALL,
        *,
        api_faults: str | None = None,
        hub_faults: str | None = None,
        entities_dir: Path | None = None,
        database_url: str = pg_url,
        **overrides: Any,
    ) -> SyncHarness:
        monkeypatch.setenv("DATABASE_URL", database_url)
        api = stack.enter_context(running_apismith(spec, token=APISMITH_TOKEN, faults=api_faults))
        hub = stack.enter_context(running_schedulehub(token=SCHEDULEHUB_TOKEN, faults=hub_faults))
        if entities_dir is not None:
            overrides["entities_dir"] = entities_dir
        settings = load_settings(
            apismith_url=api.url,
            schedulehub_url=hub.url,
            database_url=database_url,
            **{**FAST_RETRIES, **overrides},
        )
        store = StateStore(database_url)
        stack.callback(store.dispose)
        store.migrate()
        urls.append(database_url)
        retry = RetryPolicy(max_retries=10, base_delay=0.01, max_delay=0.2)
        hub_client = stack.enter_context(ScheduleHubClient(hub.url, SCHEDULEHUB_TOKEN, retry))
        instance = stack.enter_context(dg.instance_for_test())
        return SyncHarness(
            api=api,
            hub=hub,
            settings=settings,
            defs=build_definitions(settings),
            instance=instance,
            store=store,
            hub_client=hub_client,
            monkeypatch=monkeypatch,
            database_url=database_url,
        )

    with stack:
        yield make
        # The resource keeps one engine per URL for the process: close its connections.
        for url in urls:
            StateStoreResource(database_url=url).store.dispose()


@pytest.fixture
def harness(make_harness: MakeHarness) -> SyncHarness:
    """A harness over the SMALL ERP, no faults, the shipped entity configuration."""
    return make_harness()


def edited_entities(tmp_path: Path, entity: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the shipped entity configuration with one entity's YAML edited."""
    target = tmp_path / "entities"
    target.mkdir()
    for source in sorted(ENTITIES_DIR.glob("*.yaml")):
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        if raw["name"] == entity:
            edit(raw)
        (target / source.name).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def target_field(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The target field called ``name`` in an entity's raw YAML."""
    return next(f for f in raw["target"]["fields"] if f["name"] == name)
