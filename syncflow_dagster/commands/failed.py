"""`syncflow failed`: the dead-letter queue by hand — list, show, retry, resolve, discard.

    syncflow failed list [--entity E] [--stage S] [--code C] [--kind K] [--batch N]
                         [--since WHEN] [--status S|any] [--limit N] [--after-id N] [--json]
    syncflow failed show ID [--json]
    syncflow failed retry   [ID ...] [filters] [--reason TEXT] [--limit N] [--json]
    syncflow failed resolve [ID ...] [filters] --reason TEXT [--limit N] [--json]
    syncflow failed discard [ID ...] [filters] --reason TEXT [--limit N] [--json]

``retry`` runs each letter's raw form through the stages again (one retry
batch per entity, through ScheduleHub); ``resolve`` closes letters whose cause
someone fixed, ``discard`` those not worth delivering. Every action is recorded
on the row (``actions``: when, what, why). An action needs ids or at least one
filter; with filters it takes the matching ``open`` letters (``--status`` to
choose others). Nothing secret is ever printed.
"""

import argparse
import json
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.edges.state.tables import FAILED_STATUSES
from syncflow_dagster.errors import ERROR_KINDS
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.lifecycle import RunInfo
from syncflow_dagster.pipeline.redo import redo_failed
from syncflow_dagster.settings import Settings, load_settings

ACTION_LIMIT = 10_000
"""Letters one action takes up at most (run it again for the rest)."""

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UsageError(Exception):
    """The command line asks for something that cannot be done; exit code 2."""


def parse_since(text: str) -> datetime:
    """``--since``: an age (``30m``, ``12h``, ``7d``, ``2w``) or an ISO date or timestamp.

    A date or timestamp without a zone is UTC.
    """
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an age (30m, 12h, 7d, 2w) nor an ISO date or timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def add_output(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_common_filters(parser: argparse.ArgumentParser) -> None:
    """The filters every table has: entity, batch, age."""
    parser.add_argument("--entity", help="only this entity")
    parser.add_argument("--batch", type=int, dest="batch_id", metavar="N", help="only batch N")
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="created at or after WHEN: an age (30m, 12h, 7d) or an ISO date/timestamp (UTC)",
    )


def add_failed_filters(parser: argparse.ArgumentParser) -> None:
    """The filters of dead letters."""
    add_common_filters(parser)
    parser.add_argument("--stage", help="only letters of this stage (fetch, normalize, ...)")
    parser.add_argument("--code", help="only letters with this failure code")
    parser.add_argument("--kind", choices=ERROR_KINDS, help="only letters of this error kind")


def add_status(parser: argparse.ArgumentParser, statuses: Sequence[str], default: str) -> None:
    """``--status``: one status or ``any``."""
    parser.add_argument(
        "--status",
        choices=[*statuses, "any"],
        default=default,
        help=f"only rows in this status (default {default}; any: all)",
    )


def add_selection(
    parser: argparse.ArgumentParser,
    filters: Callable[[argparse.ArgumentParser], None],
    statuses: Sequence[str],
    default_status: str,
    reason_required: bool,
    what: str,
) -> None:
    """Ids and/or filters, ``--reason``, ``--limit`` and ``--json`` of an action."""
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help=f"{what} ids")
    filters(parser)
    add_status(parser, statuses, default_status)
    parser.add_argument(
        "--reason",
        required=reason_required,
        default="",
        help="why (recorded on every row)" + ("" if reason_required else "; optional"),
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=ACTION_LIMIT,
        help=f"take at most this many matching rows (default {ACTION_LIMIT})",
    )
    add_output(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list dead letters, oldest first")
    add_failed_filters(listing)
    add_status(listing, FAILED_STATUSES, "open")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--after-id", type=int, default=0, metavar="ID", help="ids above ID")
    add_output(listing)
    show = sub.add_parser("show", help="one dead letter: every column, its forms and history")
    show.add_argument("id", type=int, metavar="ID")
    add_output(show)
    helps = {
        "retry": "run letters through the stages again (one retry batch per entity)",
        "resolve": "close letters whose cause was fixed (status resolved)",
        "discard": "close letters not worth delivering (status discarded)",
    }
    for action, help_text in helps.items():
        p = sub.add_parser(action, help=help_text, description=help_text)
        add_selection(
            p, add_failed_filters, FAILED_STATUSES, "open", action != "retry", "dead-letter"
        )


def run(args: argparse.Namespace) -> int:
    """Do the action on the configured state database."""
    settings = load_settings()
    try:
        with StateStore.from_settings(settings).ensure_schema() as store:
            handler = {
                "list": _list,
                "show": _show,
                "retry": _retry,
                "resolve": _close,
                "discard": _close,
            }[args.action]
            return handler(args, settings, store)
    except UsageError as exc:
        print(f"syncflow failed {args.action}: {exc}", file=sys.stderr)
        return 2


# --- output ----------------------------------------------------------------------------


def jsonable(value: object) -> object:
    """A value ``json.dumps`` cannot write, as text (timestamps as ISO 8601)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout."""
    print(json.dumps(value, default=jsonable, ensure_ascii=False, indent=2))


def when(value: datetime | None) -> str:
    """A timestamp for a table: UTC, to the minute."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def cut(text: object, width: int) -> str:
    """``text`` on one line, at most ``width`` characters."""
    flat = "-" if text is None else " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_table(rows: Sequence[Mapping[str, object]], columns: Sequence[tuple[str, int]]) -> None:
    """Rows as aligned text columns (``(name, width)``; the last column is not padded)."""
    header = "  ".join(
        name.upper().ljust(width) if i < len(columns) - 1 else name.upper()
        for i, (name, width) in enumerate(columns)
    )
    print(header)
    for row in rows:
        cells = [cut(row.get(name), width) for name, width in columns]
        print(
            "  ".join(
                c.ljust(w) if i < len(cells) - 1 else c
                for i, (c, (_, w)) in enumerate(zip(cells, columns, strict=True))
            )
        )


def print_listing(
    args: argparse.Namespace,
    rows: pl.DataFrame,
    nothing: str,
    columns: Sequence[tuple[str, int]],
) -> int:
    """Print a page of dead letters or waiting children: JSON, or a table and how to page on."""
    if args.json:
        print_json([with_history(r) for r in rows.iter_rows(named=True)])
        return 0
    if rows.height == 0:
        print(nothing)
        return 0
    table = [
        {
            **r,
            "kind": r.get("error_kind"),
            "batch": r["batch_id"],
            "tries": r["attempts"],
            "created": when(r["created_at"]),
            "next_retry": when(r["next_retry_at"]),
        }
        for r in rows.iter_rows(named=True)
    ]
    print_table(table, columns)
    if rows.height == args.limit:
        last = int(rows.get_column("id").max())  # type: ignore[arg-type]
        print(f"(first {args.limit}; more with --after-id {last})")
    return 0


def pretty(text: str | None) -> str:
    """JSON text indented for reading (other text as it is)."""
    if text is None:
        return "  (none)"
    try:
        value = json.loads(text)
    except ValueError:
        return "  " + text
    return "\n".join(
        "  " + line for line in json.dumps(value, ensure_ascii=False, indent=2).splitlines()
    )


def history(actions: str | None) -> list[dict[str, Any]]:
    """A row's actions as a list (empty when none were recorded)."""
    if not actions:
        return []
    try:
        value = json.loads(actions)
    except ValueError:
        return [{"at": None, "action": "note", "reason": actions}]
    return value if isinstance(value, list) else []


def with_history(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for JSON output: ``actions`` as a list, not as text."""
    return {**row, "actions": history(row.get("actions"))}


# --- selection ---------------------------------------------------------------------------


def filters_of(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The filters given on the command line (only those set)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


FAILED_FILTERS = ("entity", "stage", "code", "kind", "batch_id", "since")


@dataclass(frozen=True)
class Selection:
    """The rows an action takes up."""

    rows: pl.DataFrame
    more: bool
    """More rows match than ``--limit`` let in."""
    missing: list[int]
    """Ids given that match no row (none exists, or the filters leave it out)."""

    @property
    def ids(self) -> list[int]:
        """The ids of the rows, ascending."""
        return [int(i) for i in self.rows.get_column("id")]


def select_rows(
    args: argparse.Namespace,
    lister: Callable[..., pl.DataFrame],
    filter_names: Sequence[str],
    what: str,
) -> Selection:
    """The rows an action takes up: its ids and/or its filters.

    Ids alone select those rows whatever their status (the action then says
    which it could not change); with filters, ``--status`` applies too.

    Raises:
        UsageError: neither ids nor a filter were given.
    """
    filters = filters_of(args, filter_names)
    ids = sorted(set(args.ids or []))
    if not ids and not filters:
        flags = ", ".join("--" + n.removesuffix("_id") for n in filter_names)
        raise UsageError(
            f"name the {what} ids, or at least one filter ({flags}); refusing to act on everything"
        )
    status = None if args.status == "any" or (ids and not filters) else args.status
    rows = lister(status=status, ids=ids or None, limit=args.limit + 1, **filters)
    found = set(rows.get_column("id").to_list())
    return Selection(
        rows.head(args.limit), rows.height > args.limit, [i for i in ids if i not in found]
    )


# --- the actions ---------------------------------------------------------------------------


def _list(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    status = None if args.status == "any" else args.status
    rows = store.list_failed(
        status=status,
        limit=args.limit,
        after_id=args.after_id,
        **filters_of(args, FAILED_FILTERS),
    )
    return print_listing(
        args,
        rows,
        "no dead letters match",
        [
            ("id", 8),
            ("entity", 22),
            ("stage", 9),
            ("code", 22),
            ("kind", 9),
            ("status", 9),
            ("tries", 5),
            ("batch", 7),
            ("created", 16),
            ("next_retry", 16),
            ("detail", 70),
        ],
    )


def _show(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    row = store.get_failed(args.id)
    if row is None:
        print(f"no dead letter {args.id}", file=sys.stderr)
        return 1
    if args.json:
        print_json(with_history(row))
        return 0
    print(f"dead letter {row['id']} of {row['entity']} — {row['status']}")
    fields = [
        ("batch", row["batch_id"]),
        ("stage", row["stage"]),
        ("code", row["code"]),
        ("kind", row["error_kind"] or "-"),
        ("detail", row["detail"] or "-"),
        ("bk_hash", row["bk_hash"] or "-"),
        ("source_key", row["source_key"] or "-"),
        ("rowversion", row["rowversion"] if row["rowversion"] is not None else "-"),
        ("attempts", row["attempts"]),
        ("next_retry_at", when(row["next_retry_at"])),
        ("created_at", when(row["created_at"])),
        ("updated_at", when(row["updated_at"])),
        ("resolved_at", when(row["resolved_at"])),
        ("resolution", row["resolution"] or "-"),
    ]
    for name, value in fields:
        print(f"  {name + ':':<15}{value}")
    for form in ("raw", "normalized", "mapped"):
        print(f"{form}:")
        print(pretty(row[form]))
    print("actions:")
    entries = history(row["actions"])
    if not entries:
        print("  (none)")
    for entry in entries:
        print(f"  {entry.get('at') or '-'}  {entry.get('action')}: {entry.get('reason') or '-'}")
    return 0


def _close(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    chosen = select_rows(args, store.list_failed, FAILED_FILTERS, "dead-letter")
    if args.action == "resolve":
        changed = store.resolve_failed(chosen.ids, args.reason)
    else:
        changed = store.discard_failed(chosen.ids, args.reason)
    return report_changes(args, chosen, changed, "dead letter")


def report_changes(
    args: argparse.Namespace,
    chosen: Selection,
    changed: list[int],
    what: str,
    whats: str | None = None,
) -> int:
    """Print what an action changed and what it left.

    Returns:
        The exit code: 1 when rows were named and none of them changed.
    """
    whats = whats or f"{what}s"
    done = set(changed)
    skipped = [
        {"id": r["id"], "status": r["status"]}
        for r in chosen.rows.iter_rows(named=True)
        if r["id"] not in done
    ]
    code = 0 if changed or not (skipped or chosen.missing) else 1
    if args.json:
        print_json(
            {
                "action": args.action,
                "changed": changed,
                "skipped": skipped,
                "missing": chosen.missing,
                "more": chosen.more,
            }
        )
        return code
    if not changed and not skipped and not chosen.missing:
        print(f"no {whats} match")
    if changed:
        noun = what if len(changed) == 1 else whats
        print(f"{args.action}: {len(changed)} {noun} changed: {', '.join(map(str, changed))}")
    for item in skipped:
        print(f"left {what} {item['id']} as it is: it is {item['status']}")
    if chosen.missing:
        print(f"no {what} {', '.join(map(str, chosen.missing))} (among those the filters select)")
    if chosen.more:
        print(f"more than {args.limit} match: run the command again for the rest")
    return code


def hub_client(settings: Settings) -> ScheduleHubClient:
    """ScheduleHub from the settings, as the Dagster resource builds it."""
    return ScheduleHubClient(
        settings.schedulehub_url,
        settings.schedulehub_token.get_secret_value(),
        retry_policy(settings),
        workers=settings.sync_worker_threads,
    )


def source_client(settings: Settings) -> ApiSmithClient:
    """APISmith from the settings (for the column types an entity does not declare)."""
    return ApiSmithClient(
        settings.apismith_url, settings.apismith_token.get_secret_value(), retry_policy(settings)
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    """MAX_RETRIES, RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS."""
    return RetryPolicy(
        max_retries=settings.max_retries,
        base_delay=settings.retry_delay_seconds,
        max_delay=settings.max_retry_delay_seconds,
    )


def backoff_of(settings: Settings) -> Backoff:
    """When transient letters are tried again (RETRY_*_SECONDS, RETRY_MAX_ATTEMPTS)."""
    return Backoff(
        settings.retry_delay_seconds, settings.max_retry_delay_seconds, settings.retry_max_attempts
    )


def _retry(args: argparse.Namespace, settings: Settings, store: StateStore) -> int:
    chosen = select_rows(args, store.list_failed, FAILED_FILTERS, "dead-letter")
    catalog = load_catalog(settings.entities_dir)
    run = RunInfo(f"cli-{uuid.uuid4().hex[:12]}", lease_seconds=settings.run_lease_seconds)
    with hub_client(settings) as hub, source_client(settings) as source:
        out = redo_failed(
            catalog,
            chosen.ids + chosen.missing,
            hub,
            store,
            run,
            settings.erp_timezone,
            settings.default_batch_size,
            source=source,
            backoff=backoff_of(settings),
            reason=args.reason or "syncflow failed retry",
        )
    if args.json:
        print_json(
            {
                "ok": out.ok,
                "counts": out.counts(),
                "letters": [asdict(o) for o in out.letters],
                "batches": [asdict(b) for b in out.batches],
                "more": chosen.more,
            }
        )
        return 0 if out.ok else 1
    if not out.letters:
        print("no dead letters match")
    for o in sorted(out.letters, key=lambda o: o.id):
        print(f"{o.id:>8}  {cut(o.entity, 22):<22}  {o.outcome:<13}  {o.detail}")
    for b in out.batches:
        state = f"failed ({b.error_kind}): {b.error}" if b.error else "succeeded"
        print(f"{b.entity}: retry batch {b.batch_id if b.batch_id is not None else '-'} {state}")
    print(out.summary())
    if chosen.more:
        print(f"more than {args.limit} match: run the command again for the rest")
    return 0 if out.ok else 1
