"""The operations API in process: a copy of the shipped entities, a state store, a Dagster stand-in.

``FakeDagster`` answers what the API asks of Dagster from memory (launches
become QUEUED runs, terminate cancels them); the end-to-end test uses a real
``dagster dev`` instead.
"""

import shutil
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from syncflow_dagster.api.app import create_app
from syncflow_dagster.api.dagster import (
    FINISHED,
    DaemonState,
    DagsterUnavailableError,
    Instigator,
    ReloadOutcome,
    RunInfo,
)
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.settings import Settings, load_settings

READ_TOKEN = "read-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef-xyz"


@dataclass
class FakeDagster:
    """Dagster's answers from memory; ``down`` makes every call fail as an unreachable server."""

    url: str = "http://127.0.0.1:3999"
    down: bool = False
    runs_by_id: dict[str, RunInfo] = field(default_factory=dict)
    launched: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    reloads: int = 0
    switches: dict[str, Instigator] = field(default_factory=dict)
    finish_on_terminate: str = "CANCELED"

    def _up(self) -> None:
        if self.down:
            raise DagsterUnavailableError(f"the Dagster webserver at {self.url} cannot be reached")

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        self._up()
        run_id = str(uuid.uuid4())
        self.launched.append((job, run_config, tags))
        self.runs_by_id[run_id] = RunInfo(
            run_id, job, "QUEUED", dict(tags), created_at=datetime.now(UTC)
        )
        return run_id

    def add_run(self, run_id: str, job: str, status: str, tags: dict[str, str]) -> None:
        self.runs_by_id[run_id] = RunInfo(run_id, job, status, tags, datetime.now(UTC))

    def run(self, run_id: str) -> RunInfo | None:
        self._up()
        return self.runs_by_id.get(run_id)

    def runs(
        self,
        *,
        run_ids: list[str] | None = None,
        job: str | None = None,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
    ) -> list[RunInfo]:
        self._up()
        found = [
            r
            for r in reversed(self.runs_by_id.values())
            if (run_ids is None or r.run_id in run_ids)
            and (job is None or r.job == job)
            and (statuses is None or r.status in statuses)
            and all(r.tags.get(k) == v for k, v in (tags or {}).items())
        ]
        return found[:limit]

    def terminate(self, run_id: str) -> None:
        self._up()
        run = self.runs_by_id[run_id]
        if run.status not in FINISHED:
            self.runs_by_id[run_id] = replace(run, status=self.finish_on_terminate)

    def reload_location(self) -> ReloadOutcome:
        if self.down:
            return ReloadOutcome(False, "the Dagster webserver cannot be reached")
        self.reloads += 1
        return ReloadOutcome(True, "code location 'fake' reloaded")

    def instigators(self) -> list[Instigator]:
        self._up()
        return sorted(self.switches.values(), key=lambda i: (i.kind, i.name))

    def switch(self, instigator: Instigator, running: bool) -> Instigator:
        self._up()
        new = replace(instigator, status="RUNNING" if running else "STOPPED")
        self.switches[instigator.name] = new
        return new

    def daemon_health(self) -> list[DaemonState]:
        self._up()
        return [DaemonState("SCHEDULER", True, True, datetime.now(UTC))]

    def ping(self) -> None:
        self._up()

    def ui_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"


@dataclass
class Api:
    """A client of the app and what stands behind it."""

    client: TestClient
    settings: Settings
    store: StateStore
    dagster: FakeDagster
    entities_dir: Path

    def get(self, path: str, token: str | None = READ_TOKEN, **kw: Any) -> Any:
        return self.client.get(path, headers=_auth(token), **kw)

    def post(self, path: str, token: str | None = OPERATOR_TOKEN, **kw: Any) -> Any:
        return self.client.post(path, headers={**_auth(token), **kw.pop("headers", {})}, **kw)

    def put(self, path: str, token: str | None = OPERATOR_TOKEN, **kw: Any) -> Any:
        return self.client.put(path, headers={**_auth(token), **kw.pop("headers", {})}, **kw)

    def delete(self, path: str, token: str | None = OPERATOR_TOKEN, **kw: Any) -> Any:
        return self.client.delete(path, headers=_auth(token), **kw)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def api_settings(tmp_path: Path, **extra: Any) -> Settings:
    """Settings of an API over a copy of the shipped entities and a SQLite state file."""
    entities = tmp_path / "entities"
    if not entities.exists():
        shutil.copytree(ENTITIES_DIR, entities)
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "entities_dir": entities,
        "api_read_tokens": f"reader:{READ_TOKEN}",
        "api_operator_tokens": f"alice:{OPERATOR_TOKEN}",
        "api_jwt_secret": JWT_SECRET,
        "apismith_url": "http://127.0.0.1:9",
        "schedulehub_url": "http://127.0.0.1:9",
        "health_timeout_seconds": 1,
        **extra,
    }
    return load_settings(**values)


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    """The API in process over a copy of the shipped entities and a fake Dagster.

    Once over PostgreSQL and once over SQLite (the queries of its own run on both).
    """
    settings = api_settings(tmp_path, database_url=db_url)
    store = StateStore.from_settings(settings)
    store.migrate()
    dagster = FakeDagster()
    app = create_app(settings, store=store, dagster=dagster)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, settings, store, dagster, settings.entities_dir)
    store.dispose()
