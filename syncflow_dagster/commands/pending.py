"""`syncflow pending`: children waiting for a parent, by hand — list, retry, drop.

    syncflow pending list [--entity E] [--batch N] [--since WHEN] [--status S|any]
                          [--limit N] [--after-id N] [--json]
    syncflow pending retry [ID ...] [filters] [--reason TEXT] [--limit N] [--json]
    syncflow pending drop  [ID ...] [filters] --reason TEXT [--limit N] [--json]

``retry`` makes waiting children due now: the next retry of their entity
(``retry_<entity>_job``, which ``pending_children_sensor`` launches for due
children) sends those whose parents are at the hub. ``drop`` stops a child
from waiting: it is never sent. Every action is recorded on the row.
"""

import argparse
import sys

from syncflow_dagster.commands.failed import (
    UsageError,
    add_common_filters,
    add_output,
    add_selection,
    add_status,
    filters_of,
    print_listing,
    report_changes,
    select_rows,
)
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.tables import PENDING_STATUSES
from syncflow_dagster.settings import Settings, load_settings

PENDING_FILTERS = ("entity", "batch_id", "since")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list waiting children, oldest first")
    add_common_filters(listing)
    add_status(listing, PENDING_STATUSES, "waiting")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--after-id", type=int, default=0, metavar="ID", help="ids above ID")
    add_output(listing)
    helps = {
        "retry": "make waiting children due now (their entity's next retry sends them)",
        "drop": "stop children from waiting (status dropped): they are never sent",
    }
    for action, help_text in helps.items():
        p = sub.add_parser(action, help=help_text, description=help_text)
        add_selection(p, add_common_filters, PENDING_STATUSES, "waiting", action == "drop", "child")


def run(args: argparse.Namespace) -> int:
    """Do the action on the configured state database."""
    settings = load_settings()
    try:
        with StateStore.from_settings(settings).ensure_schema() as store:
            handler = {"list": _list, "retry": _retry, "drop": _drop}[args.action]
            return handler(args, settings, store)
    except UsageError as exc:
        print(f"syncflow pending {args.action}: {exc}", file=sys.stderr)
        return 2


def _list(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    status = None if args.status == "any" else args.status
    rows = store.list_pending(
        status=status,
        limit=args.limit,
        after_id=args.after_id,
        **filters_of(args, PENDING_FILTERS),
    )
    return print_listing(
        args,
        rows,
        "no children match",
        [
            ("id", 8),
            ("entity", 22),
            ("bk_hash", 32),
            ("status", 13),
            ("tries", 5),
            ("batch", 7),
            ("created", 16),
            ("next_retry", 16),
            ("waiting_for", 90),
        ],
    )


def _retry(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    chosen = select_rows(args, store.list_pending, PENDING_FILTERS, "child")
    changed = store.retry_pending_now(chosen.ids, args.reason or "syncflow pending retry")
    code = report_changes(args, chosen, changed, "child", "children")
    if changed and not args.json:
        print(
            "due now: pending_children_sensor launches retry_<entity>_job for them "
            f"within {settings.sensor_interval_seconds} s (or launch that job yourself)"
        )
    return code


def _drop(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    chosen = select_rows(args, store.list_pending, PENDING_FILTERS, "child")
    changed = store.drop_pending(chosen.ids, args.reason)
    return report_changes(args, chosen, changed, "child", "children")
