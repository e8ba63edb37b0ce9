"""The `syncflow failed` / `syncflow pending` commands against real PostgreSQL and emulators.

``cli`` runs the command line in process with the settings in the environment
(DATABASE_URL carries a password: PostgreSQL's trust login ignores it, and
nothing may ever print it), and returns the exit code and what was printed.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from syncflow_dagster.cli import main
from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import edited_entities
from syncflow_dagster_tests.pipeline.test_redo import FAST, SPEC, Env, no_phantoms

PASSWORD = "pw-must-never-show"
HUB_TOKEN = "hub-token-must-never-show"


@dataclass
class Printed:
    """What one command printed, and its exit code."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Printed]


@dataclass
class CliEnv(Env):
    strict_dir: Path = ENTITIES_DIR
    cli: Cli | None = None

    def run(self, *argv: str) -> Printed:
        assert self.cli is not None
        return self.cli(*argv)


@pytest.fixture
def cli_env(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[CliEnv]:
    strict_dir = edited_entities(tmp_path, "items", no_phantoms)
    with (
        running_apismith(SPEC) as api,
        running_schedulehub(token=HUB_TOKEN) as hub,
        ApiSmithClient(api.url, api.token, FAST) as source,
        ScheduleHubClient(hub.url, hub.token, FAST) as client,
        StateStore(pg_url, pool_size=4) as store,
    ):
        store.migrate()
        url = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)
        for name, value in {
            "DATABASE_URL": url,
            "APISMITH_URL": api.url,
            "APISMITH_TOKEN": api.token,
            "SCHEDULEHUB_URL": hub.url,
            "SCHEDULEHUB_TOKEN": HUB_TOKEN,
            "ENTITIES_DIR": str(ENTITIES_DIR),
            "DATA_DIR": str(tmp_path / "data"),
            "MAX_RETRIES": "1",
            "RETRY_DELAY_SECONDS": "0.01",
            "MAX_RETRY_DELAY_SECONDS": "0.05",
        }.items():
            monkeypatch.setenv(name, value)
        secrets = (PASSWORD, HUB_TOKEN, api.token)

        def cli(*argv: str) -> Printed:
            capsys.readouterr()
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse refuses the command line
                code = int(exc.code or 0)
            printed = capsys.readouterr()
            for secret in secrets:
                assert secret not in printed.out and secret not in printed.err
            return Printed(code, printed.out, printed.err)

        env = CliEnv(
            api,
            hub,
            source,
            client,
            store,
            load_catalog(ENTITIES_DIR),
            load_catalog(strict_dir),
            strict_dir=strict_dir,
            cli=cli,
        )
        yield env
