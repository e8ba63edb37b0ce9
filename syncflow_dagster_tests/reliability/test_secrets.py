"""Tokens and passwords never appear in any output, event log, run config, state table or file.

Real jobs run with distinctive secret values — both bearer tokens, a wrong
token of each side, the database password in every form a setting can carry
it: in ``DATABASE_URL``'s userinfo, as a ``?password=`` query parameter, as
``POSTGRES_PASSWORD`` — and fail on purpose too (a token refused, the hub
down, the database down, batches the hub never answers). Runs go through the
command lines people use (``syncflow db upgrade``, ``dagster job execute``
with the shipped ``dagster.yaml``) and in process. Then everything is
scanned for every secret (the whole value and its second half):

* the captured stdout and stderr of every process, and Python logging;
* every Dagster event log entry, the run config, tags, job and execution
  plan snapshots of every run of the instances used;
* every column of every table of the state database;
* every file under the test's tmp dir, which holds DAGSTER_HOME and DATA_DIR.

A hit fails the test naming the secret and where it was found: a leak is a
product defect to fix in the product, not here.
"""

import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import orjson
import pytest
import sqlalchemy as sa

from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster.orchestration.build import SECRET_SETTINGS, build_definitions
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import load_settings
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.postgres import PostgresCluster, free_port
from syncflow_dagster.testing.schedulehub import RunningScheduleHub, running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import PARTITION
from syncflow_dagster_tests.reliability.results import record
from syncflow_dagster_tests.test_settings import SETTING_NAMES

SPEC = DatasetSpec(seed=13, work_orders=120, operations_per_order=1, bad_fraction=0.02)
DEBUG_LOGS = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
FAST = {
    "MAX_RETRIES": "1",
    "RETRY_DELAY_SECONDS": "0.01",
    "MAX_RETRY_DELAY_SECONDS": "0.1",
    "LOG_LEVEL": "DEBUG",
    "DEFAULT_BATCH_SIZE": "25",
}


def _secret(label: str) -> str:
    """A distinctive secret: letters and digits only, so every encoding of it is itself."""
    return f"{label}{secrets.token_hex(10)}"


@dataclass
class Scanner:
    """Looks for every secret in whatever it is given; collects where it found one.

    Every text is kept by the kind of place it came from, so that a test can
    check that the scan did see what it should (a scan of nothing finds nothing).
    """

    secrets: dict[str, str]
    leaks: list[str] = field(default_factory=list)
    seen: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def scanned(self) -> int:
        """How many texts were scanned."""
        return sum(len(texts) for texts in self.seen.values())

    def text(self, kind: str, where: str, text: str | bytes) -> None:
        """Scan one text (or bytes) of a kind of place."""
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        self.seen.setdefault(kind, []).append(data)
        for name, value in self.secrets.items():
            if value.encode() in data or value[len(value) // 2 :].encode() in data:
                self.leaks.append(f"{name} in {where}")

    def saw(self, kind: str, needle: str) -> bool:
        """Whether some scanned text of ``kind`` holds ``needle`` (a control)."""
        return any(needle.encode() in data for data in self.seen.get(kind, []))

    def files(self, root: Path) -> None:
        """Every file under ``root`` (binary files too: a secret is ASCII)."""
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.text("file", f"file {path.relative_to(root)}", path.read_bytes())

    def logging(self, records: list[logging.LogRecord]) -> None:
        """Python log records: message, arguments, exception text."""
        for r in records:
            parts = [r.getMessage(), repr(r.args), r.exc_text or "", str(r.exc_info or "")]
            self.text("python logging", f"log record of {r.name} ({r.levelname})", "\n".join(parts))

    def dagster(self, instance: dg.DagsterInstance, label: str) -> None:
        """Every run's config, tags, snapshots and event log entries."""
        for run in instance.get_runs():
            where = f"{label} run {run.run_id[:8]} ({run.job_name})"
            self.text(
                "run config", f"{where} run config", orjson.dumps(run.run_config, default=str)
            )
            self.text("run tags", f"{where} tags", orjson.dumps(dict(run.tags)))
            if run.job_snapshot_id:
                snap = instance.get_job_snapshot(run.job_snapshot_id)
                self.text("snapshot", f"{where} job snapshot", dg.serialize_value(snap))
            if run.execution_plan_snapshot_id:
                plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
                self.text("snapshot", f"{where} execution plan snapshot", dg.serialize_value(plan))
            for entry in instance.all_logs(run.run_id):
                kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
                self.text("event log", f"{where} event log entry {kind}", dg.serialize_value(entry))

    def database(self, url: str, label: str) -> None:
        """Every column of every table of a database (the state DB)."""
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                for table in sa.inspect(conn).get_table_names():
                    result = conn.exec_driver_sql(f'SELECT * FROM "{table}"')
                    columns = list(result.keys())
                    rows = result.fetchall()
                    for i, column in enumerate(columns):
                        values = "\n".join(str(row[i]) for row in rows if row[i] is not None)
                        self.text("state table", f"{label} table {table}.{column}", values)
        finally:
            engine.dispose()


@dataclass
class Scenario:
    """One way of giving SyncFlow its secrets, and what to run with it."""

    name: str
    tmp: Path
    scanner: Scanner
    env: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)
    instances: list[tuple[str, dg.DagsterInstance]] = field(default_factory=list)

    def command(self, label: str, args: list[str], **env: str) -> int:
        """Run a command line in a process of its own (cwd: the tmp dir); keep its output."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=self.tmp,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.outputs.append((f"{label}: stdout", done.stdout))
        self.outputs.append((f"{label}: stderr", done.stderr))
        return done.returncode

    def db_upgrade(self, **env: str) -> int:
        """``syncflow db upgrade``."""
        return self.command(
            "syncflow db upgrade", ["-m", "syncflow_dagster.cli", "db", "upgrade"], **env
        )

    def dagster_execute(self, label: str, job: str, **env: str) -> int:
        """``dagster job execute`` on DAGSTER_HOME with the shipped dagster.yaml."""
        return self.command(
            label,
            [
                "-m",
                "dagster",
                "job",
                "execute",
                "-m",
                "syncflow_dagster.definitions",
                "-j",
                job,
                "--tags",
                orjson.dumps({"dagster/partition": PARTITION}).decode(),
            ],
            **env,
        )


def in_process_instance(tmp_path: Path) -> ContextManager[dg.DagsterInstance]:
    """A Dagster instance kept under the test's tmp dir (scanned with the rest)."""
    home = tmp_path / "instance"
    home.mkdir()
    return dg.instance_for_test(temp_dir=str(home), set_dagster_home=False)


def _in_process(
    monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance, job: str, **env: str
) -> bool:
    """Run one job in process with the environment's settings (plus ``env``)."""
    with monkeypatch.context() as m:
        for name, value in env.items():
            m.setenv(name, value)
        defs = build_definitions(load_settings())
        job_def = defs.get_job_def(job)
        result = job_def.execute_in_process(
            run_config=DEBUG_LOGS,
            instance=instance,
            partition_key=PARTITION if job_def.partitions_def is not None else None,
            raise_on_error=False,
        )
    return result.success


@dataclass
class Deployment:
    """Both emulators with secret tokens, and the environment a deployment would have."""

    stack: ExitStack
    env: dict[str, str]
    secrets: dict[str, str]
    hub: RunningScheduleHub


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    """Emulators up, the settings in the environment, DAGSTER_HOME with the shipped dagster.yaml."""
    values = {
        "APISMITH_TOKEN": _secret("apiTok"),
        "SCHEDULEHUB_TOKEN": _secret("hubTok"),
        "wrong APISMITH_TOKEN": _secret("apiWrong"),
        "wrong SCHEDULEHUB_TOKEN": _secret("hubWrong"),
    }
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name in SECRET_SETTINGS:  # build_definitions publishes them: restore them afterwards
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # DATA_DIR and any .env: the tmp dir
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    with ExitStack() as stack:
        api = stack.enter_context(running_apismith(SPEC, token=values["APISMITH_TOKEN"]))
        hub = stack.enter_context(running_schedulehub(token=values["SCHEDULEHUB_TOKEN"]))
        env = {
            "APISMITH_URL": api.url,
            "APISMITH_TOKEN": values["APISMITH_TOKEN"],
            "SCHEDULEHUB_URL": hub.url,
            "SCHEDULEHUB_TOKEN": values["SCHEDULEHUB_TOKEN"],
            "DAGSTER_HOME": str(home),
            "DATA_DIR": str(tmp_path / "data"),
            **FAST,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Deployment(stack, env, values, hub)


def _scan_everything(
    s: Scenario, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], db: str | None
) -> None:
    captured = capfd.readouterr()
    s.scanner.text("output", "stdout of the test process", captured.out)
    s.scanner.text("output", "stderr of the test process", captured.err)
    for label, text in s.outputs:
        s.scanner.text("output", label, text)
    s.scanner.logging(caplog.records)
    for label, instance in s.instances:
        s.scanner.dagster(instance, label)
    home = Path(s.env["DAGSTER_HOME"])
    with dg.DagsterInstance.from_config(str(home)) as cli_instance:
        s.scanner.dagster(cli_instance, "DAGSTER_HOME instance")
    if db is not None:
        s.scanner.database(db, "state database")
    s.scanner.files(s.tmp)


def _verdict(s: Scenario, controls: dict[str, str]) -> None:
    """Record and judge the scan; ``controls``: kind of place -> text the scan must have seen."""
    blind = [
        f"{kind} ({needle!r})"
        for kind, needle in controls.items()
        if not s.scanner.saw(kind, needle)
    ]
    assert not blind, f"the scan did not see what it should have: {blind}"
    record(
        "secrets",
        scenario=s.name,
        scanned=s.scanner.scanned,
        places={kind: len(texts) for kind, texts in s.scanner.seen.items()},
        leaks=sorted(set(s.scanner.leaks)),
    )
    assert not s.scanner.leaks, (
        f"SECRET LEAK in scenario {s.name!r} — a product defect (invariant 5), not fixed by this "
        f"test: {sorted(set(s.scanner.leaks))}"
    )


def test_no_secret_leaks_with_the_password_in_database_url(
    deployment: Deployment,
    pg_cluster: PostgresCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stack, values = deployment.stack, deployment.secrets
    password = _secret("urlPw")
    db = pg_cluster.create_database(f"secrets_{secrets.token_hex(4)}")
    url = db.replace("syncflow@", f"syncflow:{password}@")
    monkeypatch.setenv("DATABASE_URL", url)
    scanner = Scanner({**values, "DATABASE_URL password": password})
    s = Scenario("DATABASE_URL user:password@", tmp_path, scanner, dict(os.environ))
    assert s.db_upgrade() == 0, s.outputs
    instance = stack.enter_context(in_process_instance(tmp_path))
    s.instances.append(("in-process instance", instance))
    for job in ("sync_items_job", "sync_work_centers_job", "sync_work_orders_job"):
        assert _in_process(monkeypatch, instance, job)
    # Batches the hub never answers: transient dead letters whose detail names the failure.
    hub = deployment.hub
    hub.injector.plan = FaultPlan.parse("only=/api/v1/ingest,at=1:503;2:503")
    hub.injector.count = 0
    one_at_a_time = {"SYNC_WORKER_THREADS": "1"}
    assert _in_process(monkeypatch, instance, "sync_work_order_operations_job", **one_at_a_time)
    hub.injector.plan = FaultPlan()
    wrong_api = {"APISMITH_TOKEN": values["wrong APISMITH_TOKEN"]}
    assert not _in_process(monkeypatch, instance, "sync_work_centers_job", **wrong_api)
    wrong_hub = {"SCHEDULEHUB_TOKEN": values["wrong SCHEDULEHUB_TOKEN"]}
    assert not _in_process(monkeypatch, instance, "sync_work_centers_job", **wrong_hub)
    hub_down = {"SCHEDULEHUB_URL": f"http://127.0.0.1:{free_port()}"}
    assert not _in_process(monkeypatch, instance, "sync_work_centers_job", **hub_down)
    _scan_everything(s, caplog, capfd, url)
    _verdict(
        s,
        {
            "output": "state database at head",
            "python logging": "connection failed",
            "event log": "rejected the bearer token",
            "state table": "hub_unavailable",
            "run tags": PARTITION,
            "snapshot": "DATABASE_URL",
            "file": "sync_items_job",
        },
    )


@pytest.mark.reliability
def test_no_secret_leaks_with_the_password_as_a_url_query_parameter(
    deployment: Deployment,
    pg_cluster: PostgresCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stack, values = deployment.stack, deployment.secrets
    password = _secret("queryPw")
    url = pg_cluster.create_database(f"secrets_{secrets.token_hex(4)}") + f"?password={password}"
    monkeypatch.setenv("DATABASE_URL", url)
    scanner = Scanner({**values, "?password= value": password})
    s = Scenario("DATABASE_URL ?password=", tmp_path, scanner, dict(os.environ))
    assert s.db_upgrade() == 0, s.outputs
    assert s.dagster_execute("dagster job execute (succeeds)", "sync_items_job") == 0, s.outputs
    wrong = {"APISMITH_TOKEN": values["wrong APISMITH_TOKEN"]}
    code = s.dagster_execute(
        "dagster job execute (token refused)", "sync_work_centers_job", **wrong
    )
    assert code != 0
    instance = stack.enter_context(in_process_instance(tmp_path))
    s.instances.append(("in-process instance", instance))
    assert _in_process(monkeypatch, instance, "sync_work_centers_job")
    wrong_hub = {"SCHEDULEHUB_TOKEN": values["wrong SCHEDULEHUB_TOKEN"]}
    assert not _in_process(monkeypatch, instance, "sync_work_orders_job", **wrong_hub)
    _scan_everything(s, caplog, capfd, url)
    _verdict(
        s,
        {
            "output": "rejected the bearer token",
            "event log": "rejected the bearer token",
            "state table": "rejected the bearer token",
            "snapshot": "DATABASE_URL",
            "file": "sync_items_job",
        },
    )


@pytest.mark.reliability
def test_no_secret_leaks_with_postgres_password(
    deployment: Deployment,
    pg_cluster: PostgresCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stack, values = deployment.stack, deployment.secrets
    password = _secret("envPw")
    name = f"secrets_{secrets.token_hex(4)}"
    pg_cluster.create_database(name)
    postgres = {
        "POSTGRES_HOST": pg_cluster.host,
        "POSTGRES_PORT": str(pg_cluster.port),
        "POSTGRES_DB": name,
        "POSTGRES_USER": pg_cluster.user,
        "POSTGRES_PASSWORD": password,
    }
    for key, value in postgres.items():
        monkeypatch.setenv(key, value)
    scanner = Scanner({**values, "POSTGRES_PASSWORD": password})
    s = Scenario("POSTGRES_PASSWORD", tmp_path, scanner, dict(os.environ))
    assert s.db_upgrade() == 0, s.outputs
    instance = stack.enter_context(in_process_instance(tmp_path))
    s.instances.append(("in-process instance", instance))
    assert _in_process(monkeypatch, instance, "sync_items_job")
    hub_down = {"SCHEDULEHUB_URL": f"http://127.0.0.1:{free_port()}"}
    assert not _in_process(monkeypatch, instance, "sync_work_orders_job", **hub_down)
    code = s.dagster_execute("dagster job execute (hub down)", "sync_work_orders_job", **hub_down)
    assert code != 0
    url = f"postgresql+psycopg://{pg_cluster.user}:{password}@{pg_cluster.host}:{pg_cluster.port}/{name}"
    _scan_everything(s, caplog, capfd, url)
    _verdict(
        s,
        {
            "output": "connection failed",
            "event log": "connection failed",
            "state table": "connection failed",
            "snapshot": "POSTGRES_PASSWORD",
            "file": "sync_items_job",
        },
    )


@pytest.mark.reliability
def test_no_secret_leaks_when_the_database_is_down(
    deployment: Deployment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stack, values = deployment.stack, deployment.secrets
    password, query = _secret("downPw"), _secret("downQueryPw")
    url = (
        f"postgresql+psycopg://syncflow:{password}@127.0.0.1:{free_port()}/syncflow"
        f"?password={query}&connect_timeout=2"
    )
    monkeypatch.setenv("DATABASE_URL", url)
    scanner = Scanner({**values, "DATABASE_URL password": password, "?password= value": query})
    s = Scenario("database down (both URL forms)", tmp_path, scanner, dict(os.environ))
    assert s.db_upgrade() != 0
    assert s.dagster_execute("dagster job execute (database down)", "sync_items_job") != 0
    instance = stack.enter_context(in_process_instance(tmp_path))
    s.instances.append(("in-process instance", instance))
    assert not _in_process(monkeypatch, instance, "sync_items_job")
    _scan_everything(s, caplog, capfd, None)
    _verdict(
        s,
        {"output": "connection failed", "event log": "connection failed", "file": "sync_items_job"},
    )


def test_the_scan_finds_a_secret_whole_or_cut_in_half(tmp_path: Path) -> None:
    secret = _secret("planted")
    scanner = Scanner({"planted": secret})
    (tmp_path / "a.log").write_bytes(b"\x00binary " + secret[len(secret) // 2 :].encode())
    scanner.files(tmp_path)
    scanner.text("output", "stderr", f"Authorization: Bearer {secret}")
    scanner.text("output", "stdout", "nothing here")
    assert scanner.leaks == ["planted in file a.log", "planted in stderr"]
