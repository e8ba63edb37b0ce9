import shutil
from pathlib import Path

import pytest

from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import SettingsError, load_settings

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
