"""Alembic environment for the state store.

The connection comes from, in order: ``config.attributes["connection"]`` (what
:func:`syncflow_dagster.edges.state.migrate` passes), ``sqlalchemy.url`` in the
ini file, or SyncFlow's settings (``DATABASE_URL`` / ``POSTGRES_*`` / SQLite).
"""

import logging.config

from alembic import context
from sqlalchemy.engine import Connection

from syncflow_dagster.edges.state.engine import create_state_engine, sqlite_foreign_keys_off
from syncflow_dagster.edges.state.tables import metadata
from syncflow_dagster.settings import load_settings

config = context.config

if config.config_file_name is not None and config.file_config.has_section("loggers"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url():
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return load_settings().state_db_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run against the shared connection, else one made from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_state_engine(_url(), pool_size=1)
    try:
        with engine.connect() as connection, sqlite_foreign_keys_off(connection):
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
