"""Reliability corpus: settings SyncFlow cannot work with.

Each case sets a few variables and expects ``load_settings`` to stop SyncFlow
at start with a ``SettingsError`` naming the variable and what to fix, never
echoing a secret: not a crash later (an invalid cron schedule when the
definitions load, a driver error at the first query, a client that cannot
parse its URL).
"""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncflow_dagster.errors import error_kind
from syncflow_dagster.settings import SettingsError, load_settings
from syncflow_dagster_tests.test_settings import SETTING_NAMES


@dataclass(frozen=True)
class Case:
    """One bad set of settings (``input``: variable -> value) and the error it must give."""

    name: str
    input: dict[str, str] = field(hash=False)
    outcome_kind: str
    expected: str


def _case(name: str, expected: str, **env: str) -> Case:
    return Case(name, env, "clear_error", expected)


CASES: list[Case] = [
    _case(
        "window_start_equals_end",
        "the window 07:00:00–07:00:00 is empty",
        BACKGROUND_SYNC_WINDOW_START="07:00",
        BACKGROUND_SYNC_WINDOW_END="07:00",
    ),
    _case(
        "chunk_rows_below_the_least",
        "BACKGROUND_CHUNK_ROWS: Input should be greater than or equal to 100",
        BACKGROUND_CHUNK_ROWS="10",
    ),
    _case(
        "rows_per_night_not_a_number",
        "BACKGROUND_ROWS_PER_NIGHT: Input should be a valid integer",
        BACKGROUND_ROWS_PER_NIGHT="a million",
    ),
    _case(
        "window_start_not_a_time",
        "BACKGROUND_SYNC_WINDOW_START: Input should be in a valid time format",
        BACKGROUND_SYNC_WINDOW_START="7pm",
    ),
    _case(
        "database_url_garbage",
        "DATABASE_URL: not a database URL; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        DATABASE_URL="the-db-server password SECRET",
    ),
    _case(
        "database_url_libpq_keywords",
        "DATABASE_URL: not a database URL",
        DATABASE_URL="host=db user=syncflow password=SECRET",
    ),
    _case(
        "database_url_port_not_a_number",
        "DATABASE_URL: the port is not a number",
        DATABASE_URL="postgresql://syncflow:SECRET@db:fivefourthreetwo/syncflow",
    ),
    _case(
        "database_url_port_out_of_range",
        "DATABASE_URL: port 99999 is not between 1 and 65535",
        DATABASE_URL="postgresql://syncflow:SECRET@db:99999/syncflow?sslpassword=SECRET",
    ),
    _case(
        "database_url_other_database",
        "DATABASE_URL: only PostgreSQL (postgresql://…) and SQLite (sqlite:///…) are supported, "
        "not mysql://",
        DATABASE_URL="mysql://syncflow:SECRET@db/syncflow",
    ),
    _case(
        "database_url_other_driver",
        "DATABASE_URL: PostgreSQL is reached with psycopg 3",
        DATABASE_URL="postgresql+asyncpg://syncflow:SECRET@db/syncflow",
    ),
    _case(
        "postgres_port_not_a_number",
        "POSTGRES_PORT: Input should be a valid integer",
        POSTGRES_HOST="db",
        POSTGRES_PORT="five-four-three-two",
    ),
    _case(
        "postgres_port_out_of_range",
        "POSTGRES_PORT: Input should be less than or equal to 65535",
        POSTGRES_PORT="70000",
    ),
    _case(
        "apismith_url_without_scheme",
        "APISMITH_URL: '127.0.0.1:8007' is not an http:// or https:// URL",
        APISMITH_URL="127.0.0.1:8007",
    ),
    _case(
        "schedulehub_url_port_not_a_number",
        "SCHEDULEHUB_URL: the port of 'http://***@hub.example:51x0' is not a number",
        SCHEDULEHUB_URL="http://sync:SECRET@hub.example:51x0",
    ),
    _case(
        "schedulehub_url_without_host",
        "SCHEDULEHUB_URL: 'https://:5180/api' names no host",
        SCHEDULEHUB_URL="https://:5180/api",
    ),
    _case(
        "retry_delay_above_its_maximum",
        "MAX_RETRY_DELAY_SECONDS must not be below RETRY_DELAY_SECONDS",
        RETRY_DELAY_SECONDS="120",
        MAX_RETRY_DELAY_SECONDS="30",
    ),
    _case(
        "batch_size_above_the_hub_limit",
        "DEFAULT_BATCH_SIZE: Input should be less than or equal to 1000",
        DEFAULT_BATCH_SIZE="5000",
    ),
    _case(
        "unknown_erp_time_zone",
        "ERP_TIMEZONE 'Mars/Base' is not a known time zone",
        ERP_TIMEZONE="Mars/Base",
    ),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_the_corpus_is_whole() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 15
    assert {c.outcome_kind for c in CASES} <= {"clear_error", "dead_letter", "normalization"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_settings_stop_at_start_naming_the_setting(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.input.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert case.expected in message
    assert "SECRET" not in message
    assert error_kind(err.value) == "configuration"
