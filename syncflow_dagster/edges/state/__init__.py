"""SyncFlow's state store: SQLAlchemy Core tables, Alembic migrations, bulk COPY paths.

Public API: :class:`StateStore`, :func:`migrate`, :data:`METRIC_NAMES`,
the background-sync rows. PostgreSQL (psycopg 3) in production, SQLite as the embedded
default. BK_HASH / DATA_HASH are lowercase hex at the API, ``uuid`` / ``bytea``
(16 / 32-byte BLOBs on SQLite) in the database; uppercase hex is rejected.
"""

from syncflow_dagster.edges.state.background import BackgroundRow, BackgroundRowNotFoundError
from syncflow_dagster.edges.state.batches import BatchNotFoundError
from syncflow_dagster.edges.state.leases import Lease, LeaseHeldError, LeaseLostError
from syncflow_dagster.edges.state.migrate import SchemaOutdatedError, ensure_schema, migrate
from syncflow_dagster.edges.state.positions import Position
from syncflow_dagster.edges.state.store import StateStore
from syncflow_dagster.edges.state.tables import METRIC_NAMES, metadata
from syncflow_dagster.edges.state.types import HashFormatError

__all__ = [
    "METRIC_NAMES",
    "BackgroundRow",
    "BackgroundRowNotFoundError",
    "BatchNotFoundError",
    "HashFormatError",
    "Lease",
    "LeaseHeldError",
    "LeaseLostError",
    "Position",
    "SchemaOutdatedError",
    "StateStore",
    "ensure_schema",
    "metadata",
    "migrate",
]
