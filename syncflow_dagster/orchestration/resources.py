"""Every external system as a ConfigurableResource over its plain client class."""

from functools import lru_cache
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import URL

from syncflow_dagster.background.schedules import BackgroundDefaults
from syncflow_dagster.background.window import parse_clock
from syncflow_dagster.config.loader import EntityCatalog, load_catalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.settings import state_db_url


class _HttpApiResource(dg.ConfigurableResource):
    """Retry settings both HTTP APIs share (MAX_RETRIES, RETRY_DELAY_SECONDS, …)."""

    url: str
    token: str
    timeout_seconds: float = 60.0
    max_retries: int = 3
    retry_delay_seconds: float = 60.0
    max_retry_delay_seconds: float = 3600.0
    connect_grace_seconds: float = 10.0

    def retry_policy(self) -> RetryPolicy:
        """The retry policy these settings describe."""
        return RetryPolicy(
            max_retries=self.max_retries,
            base_delay=self.retry_delay_seconds,
            max_delay=self.max_retry_delay_seconds,
            connect_grace=self.connect_grace_seconds,
        )


class ApiSmithResource(_HttpApiResource):
    """APISmith, the ERP's read API (token: APISMITH_TOKEN)."""

    page_size: int = 50_000
    _client: ApiSmithClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Open the client for the run or tick."""
        self._client = ApiSmithClient(
            self.url, self.token, self.retry_policy(), self.timeout_seconds, self.page_size
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> ApiSmithClient:
        """The open client (available while a run or tick uses the resource)."""
        if self._client is None:
            raise RuntimeError("ApiSmithResource is not set up (use it inside a run)")
        return self._client


class ScheduleHubResource(_HttpApiResource):
    """ScheduleHub, the scheduling application (token: SCHEDULEHUB_TOKEN)."""

    batch_size: int = 1000
    workers: int = 4
    _client: ScheduleHubClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Open the client for the run or tick."""
        self._client = ScheduleHubClient(
            self.url, self.token, self.retry_policy(), self.timeout_seconds, self.workers
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> ScheduleHubClient:
        """The open client (available while a run or tick uses the resource)."""
        if self._client is None:
            raise RuntimeError("ScheduleHubResource is not set up (use it inside a run)")
        return self._client


@lru_cache(maxsize=8)
def _store(url: URL, pool_size: int) -> StateStore:
    # Checked once per process: the embedded SQLite default migrates itself, an
    # old PostgreSQL schema stops the run with the command that upgrades it.
    return StateStore(url, pool_size=pool_size).ensure_schema()


class StateStoreResource(dg.ConfigurableResource):
    """The sync state database: DATABASE_URL, else POSTGRES_*, else the embedded SQLite file."""

    database_url: str | None = None
    postgres_host: str | None = None
    postgres_port: int = 5432
    postgres_db: str = "syncflow"
    postgres_user: str = "syncflow"
    postgres_password: str | None = None
    sqlite_url: str = "sqlite:///data/syncflow.db"
    pool_size: int = 20
    # how runs hold their entity, and when waiting rows are tried again
    lease_seconds: float = 120.0
    retry_delay_seconds: float = 60.0
    max_retry_delay_seconds: float = 3600.0
    retry_max_attempts: int = 5

    def backoff(self) -> Backoff:
        """When waiting children and transient dead letters are tried again."""
        return Backoff(
            self.retry_delay_seconds, self.max_retry_delay_seconds, self.retry_max_attempts
        )

    @property
    def url(self) -> URL:
        """The database URL (render it with ``hide_password``: it may hold a secret)."""
        return state_db_url(
            self.database_url or None,
            self.postgres_host or None,
            self.postgres_port,
            self.postgres_db,
            self.postgres_user,
            self.postgres_password or None,
            self.sqlite_url,
        )

    @property
    def store(self) -> StateStore:
        """The store; one engine (and pool) per process and URL."""
        return _store(self.url, self.pool_size)


@lru_cache(maxsize=8)
def _catalog(config_dir: str) -> EntityCatalog:
    return load_catalog(Path(config_dir))


class EntityCatalogResource(dg.ConfigurableResource):
    """The entity configuration (YAML) and the ERP's default time zone."""

    config_dir: str
    erp_timezone: str = "Europe/Berlin"

    @property
    def catalog(self) -> EntityCatalog:
        """Every configured entity, checked (loaded once per process)."""
        return _catalog(self.config_dir)


class BackgroundResource(dg.ConfigurableResource):
    """The defaults of background syncs (BACKGROUND_* settings) and the chunk size."""

    window_start: str = "19:00"
    window_end: str = "07:00"
    timezone: str = "Europe/Berlin"
    rows_per_night: int = 1_000_000
    chunk_rows: int = 200_000

    @property
    def defaults(self) -> BackgroundDefaults:
        """As the background package takes them."""
        return BackgroundDefaults(
            parse_clock(self.window_start),
            parse_clock(self.window_end),
            self.timezone,
            self.rows_per_night,
            self.chunk_rows,
        )
