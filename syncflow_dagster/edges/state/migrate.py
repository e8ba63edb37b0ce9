"""Run the state store's Alembic migrations from code (no alembic.ini needed)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

from syncflow_dagster.edges.state.engine import (
    create_state_engine,
    safe_url,
    sqlite_foreign_keys_off,
)
from syncflow_dagster.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def migrate(target: str | URL | Engine, revision: str = "head") -> None:
    """Upgrade the state DB to ``revision`` (default: the latest).

    Args:
        target: a URL (an engine is created and disposed) or an existing engine.
        revision: an Alembic revision; ``head`` builds the full schema on an empty DB.
    """
    engine = target if isinstance(target, Engine) else create_state_engine(target, pool_size=1)
    try:
        with (
            engine.connect() as connection,
            sqlite_foreign_keys_off(connection),
            connection.begin(),
        ):
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not target:
            engine.dispose()


UPGRADE_COMMAND = "uv run syncflow db upgrade"


class SchemaOutdatedError(ConfigurationError):
    """The state database's schema is missing or older than this release needs."""


def head_revision() -> str:
    """The latest revision of the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the state database is at (None: no SyncFlow schema at all)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(engine: Engine, migrate_sqlite: bool = True) -> None:
    """Make sure the state schema is at head before anything uses it.

    The embedded SQLite default migrates itself; a PostgreSQL database is
    somebody's production system, so a missing or old schema stops SyncFlow
    with the exact command to run instead.

    Raises:
        SchemaOutdatedError: naming the database, both revisions and the command.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if engine.dialect.name == "sqlite" and migrate_sqlite:
        migrate(engine)
        return
    where = safe_url(engine.url)
    found = "has no SyncFlow schema" if current is None else f"is at revision {current}"
    raise SchemaOutdatedError(
        f"the state database {where} {found}, this release needs revision {head}: run "
        f"`{UPGRADE_COMMAND}` with the same settings (DATABASE_URL / POSTGRES_*), then start again"
    )
