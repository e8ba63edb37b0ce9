import argparse
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from syncflow_dagster.commands import db as db_command
from syncflow_dagster.edges.state.engine import safe_url
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import SettingsError, load_settings, mask_url

SETTING_NAMES = [
    "APP_ENV",
    "DEBUG",
    "LOG_LEVEL",
    "DATA_DIR",
    "ENTITIES_DIR",
    "ERP_TIMEZONE",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_POOL_SIZE",
    "APISMITH_URL",
    "APISMITH_TOKEN",
    "SCHEDULEHUB_URL",
    "SCHEDULEHUB_TOKEN",
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "SYNC_WORKER_THREADS",
    "MAX_RETRIES",
    "RETRY_DELAY_SECONDS",
    "MAX_RETRY_DELAY_SECONDS",
    "BACKGROUND_SYNC_ENABLED",
    "BACKGROUND_SYNC_WINDOW_START",
    "BACKGROUND_SYNC_WINDOW_END",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_the_seed_values_and_sqlite_in_the_data_folder() -> None:
    s = load_settings()
    assert (
        s.postgres_pool_size,
        s.default_batch_size,
        s.max_batch_size,
        s.sync_worker_threads,
    ) == (
        20,
        1000,
        10000,
        4,
    )
    assert (s.max_retries, s.retry_delay_seconds, s.max_retry_delay_seconds) == (3, 60, 3600)
    assert s.background_sync_enabled
    assert str(s.background_sync_window_start) == "19:00:00"
    assert str(s.background_sync_window_end) == "07:00:00"
    url = s.state_db_url
    assert url.drivername == "sqlite" and url.database is not None
    assert Path(url.database) == (Path.cwd() / "data" / "syncflow.db").resolve()


def test_environment_is_case_insensitive_and_database_url_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("postgres_host", "db.example")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw-secret")
    url = load_settings().state_db_url
    assert (url.drivername, url.host, url.password) == (
        "postgresql+psycopg",
        "db.example",
        "pw-secret",
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:url-secret@other:6000/x")
    url = load_settings().state_db_url
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "other", 6000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POSTGRES_PORT", "not-a-port"),
        ("POSTGRES_POOL_SIZE", "0"),
        ("DEFAULT_BATCH_SIZE", "5000"),
        ("MAX_RETRIES", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("BACKGROUND_SYNC_WINDOW_START", "25:00"),
        ("BACKGROUND_SYNC_ENABLED", "perhaps"),
        ("ERP_TIMEZONE", "Mars/Olympus"),
        ("APP_ENV", "space"),
    ],
)
def test_bad_values_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_relations_between_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAY_SECONDS", "100")
    monkeypatch.setenv("MAX_RETRY_DELAY_SECONDS", "10")
    with pytest.raises(SettingsError, match="MAX_RETRY_DELAY_SECONDS"):
        load_settings()


def test_secrets_never_appear_in_errors_or_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APISMITH_TOKEN", "tok-SECRET-1")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw-SECRET-2")
    monkeypatch.setenv("POSTGRES_HOST", "db")
    settings = load_settings()
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings.model_dump())
    assert "SECRET" not in settings.state_db_url.render_as_string(hide_password=True)
    monkeypatch.setenv("POSTGRES_PORT", "tok-SECRET-3")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "SECRET" not in str(err.value)


def test_env_file_is_read_and_the_example_is_valid(tmp_path: Path) -> None:
    shutil.copy(PROJECT_DIR / ".env.example", tmp_path / ".env")
    settings = load_settings()
    assert settings.apismith_url == "http://127.0.0.1:8007"
    (tmp_path / ".env").write_text("SYNC_WORKER_THREADS=7\nAPISMITH_TOKEN=from-dotenv\n")
    settings = load_settings()
    assert settings.sync_worker_threads == 7
    assert settings.apismith_token.get_secret_value() == "from-dotenv"


def test_example_documents_every_setting() -> None:
    example = (PROJECT_DIR / ".env.example").read_text()
    readme = (PROJECT_DIR / "README.md").read_text()
    for name in SETTING_NAMES:
        assert name in example, name
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw-SECRET@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u:p@ss-SECRET@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u@db/x?password=SECRET", "postgresql://u@db/x?password=***"),
        (
            "postgresql://db/x?sslmode=require&sslpassword=SECRET",
            "postgresql://db/x?sslmode=require&sslpassword=***",
        ),
        (
            "postgresql://db/x?pass=SECRET&client_secret=SECRET",
            "postgresql://db/x?pass=***&client_secret=***",
        ),
        ("https://user:tok-SECRET@erp.example/api", "https://***@erp.example/api"),
        ("https://ghp_SECRET@erp.example/api", "https://***@erp.example/api"),
        ("http://erp.example/api?token=SECRET&limit=5", "http://erp.example/api?token=***&limit=5"),
        ("http://erp.example/cb#access_token=SECRET", "http://erp.example/cb#access_token=***"),
        ("host=db password=SECRET user=u", "host=db password=*** user=u"),
        ("http://erp.example:8080/users/@me", "http://erp.example:8080/users/@me"),
        ("sqlite:////data/syncflow.db", "sqlite:////data/syncflow.db"),
    ],
)
def test_every_credential_a_url_can_carry_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "SECRET" not in mask_url(url)


def test_the_state_url_is_masked_wherever_it_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url("postgresql+psycopg://u:pw-SECRET@db/x?password=SECRET&sslpassword=SECRET")
    assert safe_url(url) == "postgresql+psycopg://u:***@db/x?password=***&sslpassword=***"
    migrated: list[object] = []

    class FakeStore:
        def __init__(self, url: object, pool_size: int) -> None:
            migrated.append(url)

        def migrate(self) -> None:
            pass

        def dispose(self) -> None:
            pass

    monkeypatch.setattr(db_command, "StateStore", FakeStore)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw-SECRET@db/x?password=SECRET")
    assert db_command.run(argparse.Namespace(action="upgrade")) == 0
    printed = capsys.readouterr().out
    assert "SECRET" not in printed and "password=***" in printed and migrated


def test_an_empty_background_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_WINDOW_START", "08:00")
    monkeypatch.setenv("BACKGROUND_SYNC_WINDOW_END", "08:00")
    with pytest.raises(SettingsError, match=r"BACKGROUND_SYNC_WINDOW_START.*is empty"):
        load_settings()


@pytest.mark.parametrize(
    ("start", "end"), [("23:30", "00:30"), ("19:59", "20:00:01"), ("19:10", "19:50")]
)
def test_any_window_that_is_not_empty_is_taken(
    monkeypatch: pytest.MonkeyPatch, start: str, end: str
) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_WINDOW_START", start)
    monkeypatch.setenv("BACKGROUND_SYNC_WINDOW_END", end)
    load_settings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "not a url password=SECRET", "not a database URL"),
        ("DATABASE_URL", "postgresql://u:SECRET@db:five/x", "port is not a number"),
        ("DATABASE_URL", "mysql://u:SECRET@db/x", "only PostgreSQL"),
        ("DATABASE_URL", "postgresql+asyncpg://u:SECRET@db/x", "psycopg 3"),
        ("DATABASE_URL", "postgresql://u:SECRET@db:70000/x", "not between 1 and 65535"),
        ("APISMITH_URL", "127.0.0.1:8007", "not an http:// or https:// URL"),
        ("SCHEDULEHUB_URL", "http://u:SECRET@127.0.0.1:51x0", "port .* is not a number"),
        ("SCHEDULEHUB_URL", "http://:5180", "names no host"),
    ],
)
def test_unusable_urls_fail_at_start_naming_the_setting_never_the_secret(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name}: .*{message}") as err:
        load_settings()
    assert "SECRET" not in str(err.value)


def test_usable_database_urls_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for url in (
        "postgresql://u:pw@db:5432/x?sslmode=require",
        "postgres://u@db/x",
        "postgresql+psycopg2://u@db/x",
        f"sqlite:///{tmp_path / 'x.db'}",
    ):
        monkeypatch.setenv("DATABASE_URL", url)
        load_settings()
