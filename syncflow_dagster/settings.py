"""The one place SyncFlow reads its environment.

Every setting comes from the environment or from `.env` in the working
directory (names are case-insensitive). Nothing here runs at import time:
call :func:`load_settings` where a process starts.
"""

from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from syncflow_dagster.errors import ConfigurationError
from syncflow_dagster.paths import ENTITIES_DIR

DEMO_APISMITH_TOKEN = "apismith-demo-token"
DEMO_SCHEDULEHUB_TOKEN = "schedulehub-demo-token"


class SettingsError(ConfigurationError):
    """A setting has a value SyncFlow cannot use; the message names the variable."""


class Settings(BaseSettings):
    """SyncFlow's settings. `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,
    )

    app_env: Literal["development", "test", "staging", "production"] = "development"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    data_dir: Path = Path("data")
    entities_dir: Path = ENTITIES_DIR

    database_url: SecretStr | None = None
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_db: str = "syncflow"
    postgres_user: str = "syncflow"
    postgres_password: SecretStr | None = None
    postgres_pool_size: int = Field(default=20, ge=1, le=1000)

    apismith_url: str = "http://127.0.0.1:8007"
    apismith_token: SecretStr = SecretStr(DEMO_APISMITH_TOKEN)
    schedulehub_url: str = "http://127.0.0.1:5180"
    schedulehub_token: SecretStr = SecretStr(DEMO_SCHEDULEHUB_TOKEN)

    default_batch_size: int = Field(default=1000, ge=1, le=1000)
    max_batch_size: int = Field(default=10000, ge=1)
    sync_worker_threads: int = Field(default=4, ge=1, le=64)

    max_retries: int = Field(default=3, ge=0, le=100)
    retry_delay_seconds: float = Field(default=60, ge=0)
    max_retry_delay_seconds: float = Field(default=3600, ge=0)

    background_sync_enabled: bool = True
    background_sync_window_start: time = time(19, 0, 0)
    background_sync_window_end: time = time(7, 0, 0)
    erp_timezone: str = "Europe/Berlin"

    @model_validator(mode="after")
    def _check_relations(self) -> "Settings":
        if self.max_retry_delay_seconds < self.retry_delay_seconds:
            raise ValueError("MAX_RETRY_DELAY_SECONDS must not be below RETRY_DELAY_SECONDS")
        if self.max_batch_size < self.default_batch_size:
            raise ValueError("MAX_BATCH_SIZE must not be below DEFAULT_BATCH_SIZE")
        try:
            ZoneInfo(self.erp_timezone)
        except Exception as exc:
            raise ValueError(
                f"ERP_TIMEZONE {self.erp_timezone!r} is not a known time zone"
            ) from exc
        return self

    @property
    def sqlite_url(self) -> str:
        """The embedded default state store: a SQLite file in the data folder."""
        return f"sqlite:///{(self.data_dir / 'syncflow.db').resolve()}"

    @cached_property
    def state_db_url(self) -> URL:
        """The state store's SQLAlchemy URL: DATABASE_URL, else POSTGRES_*, else SQLite."""
        return state_db_url(
            self.database_url.get_secret_value() if self.database_url else None,
            self.postgres_host,
            self.postgres_port,
            self.postgres_db,
            self.postgres_user,
            self.postgres_password.get_secret_value() if self.postgres_password else None,
            self.sqlite_url,
        )


def normalize_db_url(url: str | URL) -> URL:
    """A SQLAlchemy URL with psycopg 3 as the PostgreSQL driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def state_db_url(
    database_url: str | None,
    postgres_host: str | None,
    postgres_port: int,
    postgres_db: str,
    postgres_user: str,
    postgres_password: str | None,
    sqlite_url: str,
) -> URL:
    """DATABASE_URL when given, else a PostgreSQL URL from POSTGRES_*, else ``sqlite_url``."""
    if database_url:
        return normalize_db_url(database_url)
    if postgres_host:
        return URL.create(
            "postgresql+psycopg",
            username=postgres_user,
            password=postgres_password,
            host=postgres_host,
            port=postgres_port,
            database=postgres_db,
        )
    return make_url(sqlite_url)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one clear error.

    Raises:
        SettingsError: naming every variable whose value is unusable (never the value
            of a secret).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper() or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
