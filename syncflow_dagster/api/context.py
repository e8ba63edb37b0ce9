"""What every handler works with: the settings, the state store, Dagster, the caller's checks."""

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry

from syncflow_dagster.api.auth import Authenticator
from syncflow_dagster.api.dagster import DagsterGateway, DagsterPort
from syncflow_dagster.api.problems import ApiProblem
from syncflow_dagster.config.loader import ConfigError, EntityCatalog, load_catalog
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.logs import Redactor, secret_values
from syncflow_dagster.settings import Settings

SERVICE = "syncflow"
API_VERSION = "v1"


def service_version() -> str:
    """SyncFlow's version, as installed."""
    try:
        return version("syncflow")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class ApiContext:
    """The API's collaborators; one per app."""

    settings: Settings
    store: StateStore
    dagster: DagsterPort
    auth: Authenticator
    version: str = field(default_factory=service_version)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    entity_lock: threading.Lock = field(default_factory=threading.Lock)
    redact: Redactor = field(default_factory=Redactor)
    registry: CollectorRegistry | None = None
    """What /api/v1/metrics renders (set by the app)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: StateStore | None = None,
        dagster: DagsterPort | None = None,
    ) -> "ApiContext":
        """The context ``settings`` describe (a store or Dagster may be given instead)."""
        return cls(
            settings=settings,
            store=store or StateStore.from_settings(settings).ensure_schema(),
            dagster=dagster
            or DagsterGateway(
                settings.dagster_webserver_url, quick_timeout=settings.health_timeout_seconds
            ),
            auth=Authenticator(settings),
            redact=Redactor(secret_values(settings)),
        )

    def catalog(self) -> EntityCatalog:
        """The entity configuration as it is on disk now.

        Raises:
            ApiProblem: 500 naming the file and field when it does not load.
        """
        try:
            return load_catalog(self.settings.entities_dir)
        except ConfigError as exc:
            raise ApiProblem(
                500, f"the entity configuration does not load: {exc}", title="Configuration Error"
            ) from None
