"""`syncflow db`: bring the state database to the latest schema."""

import argparse
import sys

from sqlalchemy.exc import DBAPIError, OperationalError

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.settings import load_settings, mask_url


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("action", choices=["upgrade"], help="upgrade: run the migrations to head")


def run(args: argparse.Namespace) -> int:
    """Migrate the configured state database (DATABASE_URL / POSTGRES_* / embedded SQLite)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    where = mask_url(settings.state_db_url)
    store = StateStore(settings.state_db_url, pool_size=settings.postgres_pool_size)
    try:
        store.migrate()
    except (OperationalError, DBAPIError) as exc:
        # The driver's message names the host and the reason, never the password.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(
            f"syncflow db upgrade: cannot reach the state database {where}: {reason}\n"
            "check DATABASE_URL (or POSTGRES_HOST / _PORT / _DB / _USER / _PASSWORD) "
            "and that the server is up",
            file=sys.stderr,
        )
        return 2
    finally:
        store.dispose()
    print(f"state database at head: {where}")
    return 0
