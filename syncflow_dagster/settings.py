"""The one place SyncFlow reads its environment.

Every setting comes from the environment or from `.env` in the working
directory (names are case-insensitive). Nothing here runs at import time:
call :func:`load_settings` where a process starts.
"""

import re
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from syncflow_dagster.errors import ConfigurationError
from syncflow_dagster.paths import ENTITIES_DIR

DEMO_APISMITH_TOKEN = "apismith-demo-token"
DEMO_SCHEDULEHUB_TOKEN = "schedulehub-demo-token"


MASK = "***"
# Query (or libpq keyword) parameters whose value is a credential.
_SECRET_PARAM = re.compile(
    r"(^|[?&;#\s])([^=&;#\s]*(?:pass|pwd|token|secret|key|auth|credential|sig)[^=&;#\s]*)"
    r"=([^&;#\s]*)",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_HOST_PORT_PATH = re.compile(r"[0-9]{0,5}[/?#]")


class SettingsError(ConfigurationError):
    """A setting has a value SyncFlow cannot use; the message names the variable."""


def mask_url(url: str | URL) -> str:
    """A URL as text with every credential it can carry replaced by ``***``.

    The one masking function for URLs SyncFlow prints (logs, errors, commands):
    the password of the userinfo (``user:***@host``), the whole userinfo of an
    http(s) URL (``https://***@host``, where a lone user is often a token), and
    the value of every query, fragment or libpq keyword parameter whose name
    says credential (``password=``, ``pass=``, ``pwd=``, ``sslpassword=``,
    ``token=``, ``access_token=``, ``api_key=``, ``*secret*=``, ``auth…=``,
    ``sig=``). Works on text that is not a valid URL too; a SQLAlchemy
    ``URL`` is rendered first.
    """
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    scheme = _SCHEME.match(text)
    if scheme is not None:
        start = scheme.end()
        rest = text[start:]
        at = rest.rfind("@")  # the last '@': a password may hold an unencoded '@'
        user, colon, secret = rest[:at].partition(":")
        web = scheme.group(1).lower() in ("http", "https")
        is_userinfo = at >= 0 and not any(c in user for c in "/?#")
        if web and colon and _HOST_PORT_PATH.match(secret):
            is_userinfo = False  # host:port/path…@…: an '@' after the authority
        if is_userinfo:
            masked = MASK if web else (f"{user}:{MASK}" if colon else user)
            text = text[:start] + masked + rest[at:]
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)


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

    # The operations API (`syncflow api`): where it listens, who may call it, what it checks.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8008, ge=1, le=65535)
    api_read_tokens: SecretStr | None = None
    api_operator_tokens: SecretStr | None = None
    api_jwt_secret: SecretStr | None = None
    api_jwt_issuer: str | None = None
    api_jwt_audience: str | None = None
    dagster_webserver_url: str = "http://127.0.0.1:3000"
    health_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    prometheus_multiproc_dir: Path | None = None

    @field_validator("api_read_tokens", "api_operator_tokens")
    @classmethod
    def _usable_api_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for _name, token in api_token_entries(value):
                if len(token) < API_TOKEN_MIN_LENGTH or any(c.isspace() for c in token):
                    raise ValueError(
                        f"every token must be at least {API_TOKEN_MIN_LENGTH} characters "
                        "without spaces (comma-separated TOKEN or NAME:TOKEN entries)"
                    )
        return value

    @field_validator("api_jwt_secret")
    @classmethod
    def _usable_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("an HS256 secret must be at least 32 bytes long")
        return value

    @field_validator("dagster_webserver_url")
    @classmethod
    def _usable_webserver_url(cls, value: str) -> str:
        problem = http_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value.rstrip("/")

    default_batch_size: int = Field(default=1000, ge=1, le=1000)
    max_batch_size: int = Field(default=10000, ge=1)
    sync_worker_threads: int = Field(default=4, ge=1, le=64)

    max_retries: int = Field(default=3, ge=0, le=100)
    retry_delay_seconds: float = Field(default=60, ge=0)
    max_retry_delay_seconds: float = Field(default=3600, ge=0)
    connect_grace_seconds: float = Field(default=10, ge=0, le=3600)
    retry_max_attempts: int = Field(default=5, ge=1, le=100)
    sensor_interval_seconds: int = Field(default=30, ge=1, le=86400)
    run_lease_seconds: float = Field(default=120, ge=5, le=86400)

    background_sync_enabled: bool = True
    background_sync_window_start: time = time(19, 0, 0)
    background_sync_window_end: time = time(7, 0, 0)
    background_rows_per_night: int = Field(default=1_000_000, ge=1)
    background_chunk_rows: int = Field(default=200_000, ge=100, le=5_000_000)
    erp_timezone: str = "Europe/Berlin"

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            problem = database_url_problem(value.get_secret_value().strip())
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("apismith_url", "schedulehub_url")
    @classmethod
    def _usable_http_url(cls, value: str) -> str:
        problem = http_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_relations(self) -> "Settings":
        start, end = self.background_sync_window_start, self.background_sync_window_end
        if start == end:
            raise ValueError(
                f"BACKGROUND_SYNC_WINDOW_START / BACKGROUND_SYNC_WINDOW_END: the window "
                f"{start:%H:%M:%S}–{end:%H:%M:%S} is empty; give it a start and a later end "
                "(e.g. 19:00:00–07:00:00, across midnight)"
            )
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


def database_url_problem(text: str) -> str | None:
    """What makes ``text`` unusable as the state database URL (never echoing a secret)."""
    try:
        url = normalize_db_url(text)
    except ArgumentError:
        return (
            "not a database URL; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
            "or sqlite:///PATH"
        )
    except ValueError:
        return "the port is not a number; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        return (
            f"only PostgreSQL (postgresql://…) and SQLite (sqlite:///…) are supported, "
            f"not {url.drivername}://"
        )
    if backend == "postgresql":
        if url.drivername != "postgresql+psycopg":
            return (
                f"PostgreSQL is reached with psycopg 3: write postgresql:// or "
                f"postgresql+psycopg://, not {url.drivername}://"
            )
        if url.port is not None and not 1 <= url.port <= 65535:
            return f"port {url.port} is not between 1 and 65535 (in {mask_url(url)})"
    return None


def http_url_problem(text: str) -> str | None:
    """What makes ``text`` unusable as an API's base URL (credentials masked)."""
    shown = mask_url(text)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        return f"{shown!r} is not an http:// or https:// URL"
    if not parts.hostname:
        return f"{shown!r} names no host"
    try:
        port = parts.port
    except ValueError:
        return f"the port of {shown!r} is not a number between 1 and 65535"
    if port == 0:
        return f"the port of {shown!r} is not a number between 1 and 65535"
    return None


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
            name = "_".join(str(p) for p in err["loc"]).upper()
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


API_TOKEN_MIN_LENGTH = 16
"""Shortest static API token accepted (API_READ_TOKENS, API_OPERATOR_TOKENS)."""


def api_token_entries(value: SecretStr | None) -> list[tuple[str | None, str]]:
    """The entries of API_READ_TOKENS / API_OPERATOR_TOKENS: ``(name or None, token)``.

    The setting is a comma-separated list of ``TOKEN`` or ``NAME:TOKEN`` (the
    name says who holds the token; it is what runs launched with it are tagged with).
    """
    if value is None:
        return []
    entries: list[tuple[str | None, str]] = []
    for part in value.get_secret_value().split(","):
        item = part.strip()
        if not item:
            continue
        name, colon, token = item.partition(":")
        entries.append((name.strip() or None, token.strip()) if colon else (None, item))
    return entries
