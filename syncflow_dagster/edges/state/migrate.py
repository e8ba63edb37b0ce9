"""Run the state store's Alembic migrations from code (no alembic.ini needed)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from syncflow_dagster.edges.state.engine import create_state_engine

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
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not target:
            engine.dispose()
