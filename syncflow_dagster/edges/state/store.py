"""The state store: one plain class over the seven tables (see the package docstring)."""

from syncflow_dagster.edges.state.background import BackgroundOps
from syncflow_dagster.edges.state.batches import BatchOps
from syncflow_dagster.edges.state.failed import FailedOps
from syncflow_dagster.edges.state.mappings import MappingOps
from syncflow_dagster.edges.state.migrate import ensure_schema, migrate
from syncflow_dagster.edges.state.pending import PendingOps
from syncflow_dagster.edges.state.sync_state import SyncStateOps
from syncflow_dagster.settings import Settings


class StateStore(SyncStateOps, BatchOps, FailedOps, PendingOps, MappingOps, BackgroundOps):
    """SyncFlow's state DB: PostgreSQL (production) or SQLite (zero-setup default).

    ``StateStore(settings.state_db_url, settings.postgres_pool_size)``; call
    :meth:`migrate` once at start-up. Hashes are lowercase hex at this API,
    timestamps aware UTC. The repr never shows the password.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> "StateStore":
        """The store that ``settings`` configure (``state_db_url``, ``postgres_pool_size``)."""
        return cls(settings.state_db_url, settings.postgres_pool_size)

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision."""
        migrate(self._engine)

    def ensure_schema(self) -> "StateStore":
        """Check the schema is at head (SQLite: bring it there); returns the store.

        Raises:
            SchemaOutdatedError: on PostgreSQL, naming the command to run.
        """
        ensure_schema(self._engine)
        return self

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()
