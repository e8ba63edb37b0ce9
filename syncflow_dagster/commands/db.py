"""`syncflow db`: bring the state database to the latest schema."""

import argparse

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.settings import load_settings, mask_url


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("action", choices=["upgrade"], help="upgrade: run the migrations to head")


def run(args: argparse.Namespace) -> int:
    """Migrate the configured state database (DATABASE_URL / POSTGRES_* / embedded SQLite)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = StateStore(settings.state_db_url, pool_size=settings.postgres_pool_size)
    store.migrate()
    print(f"state database at head: {mask_url(settings.state_db_url)}")
    return 0
