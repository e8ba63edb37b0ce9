"""`syncflow db`: bring the state database to the latest schema."""

import argparse

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("action", choices=["upgrade"], help="upgrade: run the migrations to head")


def run(args: argparse.Namespace) -> int:
    """Migrate the configured state database (DATABASE_URL / POSTGRES_* / embedded SQLite)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = StateStore(settings.state_db_url, pool_size=settings.postgres_pool_size)
    store.migrate()
    print(f"state database at head: {settings.state_db_url.render_as_string(hide_password=True)}")
    return 0
