"""`syncflow schedules`: background syncs — list, show, create, change, hold, reset, trigger.

    syncflow schedules list [--json]
    syncflow schedules show ENTITY [--json]
    syncflow schedules create ENTITY [--window 19:00-07:00] [--timezone TZ]
                              [--rows-per-night N | --nights N] [--mode incremental|full]
    syncflow schedules update ENTITY [the same options]
    syncflow schedules pause ENTITY [--reason TEXT]
    syncflow schedules resume|reset|trigger|delete ENTITY

A background sync is one row per entity (``background_sync_schedule``): the
sensor reads it on every tick, so a change takes effect the next night
without a redeploy. ``--nights N`` spreads the rows over N nights (the
budget follows from APISmith's count); ``reset`` starts over from the first
record; ``trigger`` asks for a run at the sensor's next tick (inside the window).
"""

import argparse
import sys
from typing import Any

from syncflow_dagster.background import schedules as bg
from syncflow_dagster.commands.failed import print_json, print_table, when
from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster.edges.state import BackgroundRowNotFoundError, StateStore
from syncflow_dagster.settings import load_settings

ACTIONS = ("list", "show", "create", "update", "pause", "resume", "reset", "trigger", "delete")


def _window(text: str) -> tuple[str, str]:
    start, sep, end = text.partition("-")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write the window as START-END, e.g. 19:00-07:00"
        )
    return start.strip(), end.strip()


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="every background sync and its progress")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = sub.add_parser("show", help="one background sync: its row and its figures")
    show.add_argument("entity")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    for action, help_text in (
        ("create", "a background sync for an entity (defaults from the settings)"),
        ("update", "change the window, zone, budget or mode (from the next run on)"),
    ):
        p = sub.add_parser(action, help=help_text, description=help_text)
        p.add_argument("entity")
        p.add_argument("--window", type=_window, help="START-END in the zone, e.g. 19:00-07:00")
        p.add_argument("--timezone", help="IANA zone of the window (default ERP_TIMEZONE)")
        budget = p.add_mutually_exclusive_group()
        budget.add_argument("--rows-per-night", type=int, help="the nightly budget in rows")
        budget.add_argument("--nights", type=int, help="spread the rows over this many nights")
        p.add_argument("--mode", choices=["incremental", "full"])
        p.add_argument("--json", action="store_true", help="machine-readable output")
    pause = sub.add_parser("pause", help="hold it: nothing is launched until it is resumed")
    pause.add_argument("entity")
    pause.add_argument("--reason", default="", help="why (recorded on the row)")
    for action, help_text in (
        ("resume", "let it launch again in its next window"),
        ("reset", "start over: progress to nothing, a new pass from the first record"),
        ("trigger", "run at the sensor's next tick instead of the next hour (window open)"),
        ("delete", "remove the background sync (its reading position stays)"),
    ):
        p = sub.add_parser(action, help=help_text, description=help_text)
        p.add_argument("entity")


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.window:
        out["window_start"], out["window_end"] = args.window
    if args.timezone:
        out["timezone"] = args.timezone
    if args.rows_per_night is not None:
        out["rows_per_night"], out["target_nights"] = args.rows_per_night, None
    if args.nights is not None:
        out["target_nights"], out["rows_per_night"] = args.nights, None
    if args.mode:
        out["mode"] = args.mode
    return out


COLUMNS = [
    ("entity", 24),
    ("status", 8),
    ("window", 28),
    ("budget", 10),
    ("done", 22),
    ("nights", 8),
    ("night", 11),
    ("updated", 16),
    ("note", 40),
]


def _line(s: bg.BackgroundSchedule) -> dict[str, object]:
    r = s.row
    total = f"{r.rows_total:,}" if r.rows_total is not None else "?"
    left = s.nights_left
    return {
        "entity": r.entity,
        "status": r.status + (" (held)" if r.on_hold else ""),
        "window": f"{r.window_start}-{r.window_end} {r.timezone}",
        "budget": f"{s.budget:,}",
        "done": f"{r.rows_done:,} / {total}",
        "nights": f"{r.nights_used}" + (f"+{left}" if left else ""),
        "night": r.night or "-",
        "updated": when(r.updated_at),
        "note": r.last_error or "",
    }


def run(args: argparse.Namespace) -> int:
    """Do the action on the configured state database."""
    settings = load_settings()
    catalog = load_catalog(settings.entities_dir)
    defaults = bg.BackgroundDefaults.from_settings(settings)
    try:
        with StateStore.from_settings(settings).ensure_schema() as store:
            return _run(args, store, catalog, defaults)
    except (bg.ScheduleError, BackgroundRowNotFoundError) as exc:
        print(f"syncflow schedules {args.action}: {exc}", file=sys.stderr)
        return 2


def _run(
    args: argparse.Namespace,
    store: StateStore,
    catalog: Any,
    defaults: bg.BackgroundDefaults,
) -> int:
    action = args.action
    if action == "list":
        rows = bg.list_schedules(store, catalog, defaults)
        if args.json:
            print_json([s.as_dict() for s in rows])
        else:
            print_table([_line(s) for s in rows], COLUMNS)
        return 0
    if action == "show":
        stats = bg.schedule_stats(store, catalog, defaults, args.entity)
        schedule = bg.get_schedule(store, catalog, defaults, args.entity)
        doc = {**schedule.as_dict(), **stats}
        if args.json:
            print_json(doc)
        else:
            for name, value in doc.items():
                print(f"{name:>22}: {value}")
        return 0
    if action == "delete":
        existed = bg.delete_schedule(store, catalog, defaults, args.entity)
        print(f"{args.entity}: background sync {'deleted' if existed else 'did not exist'}")
        return 0 if existed else 2
    if action in ("create", "update"):
        fn = bg.create_schedule if action == "create" else bg.update_schedule
        schedule = fn(store, catalog, defaults, args.entity, **_changes(args))
    elif action == "pause":
        schedule = bg.pause_schedule(store, catalog, defaults, args.entity, args.reason)
    elif action == "resume":
        schedule = bg.resume_schedule(store, catalog, defaults, args.entity)
    elif action == "reset":
        schedule = bg.reset_schedule(store, catalog, defaults, args.entity)
    else:
        schedule = bg.trigger_schedule(store, catalog, defaults, args.entity)
    if getattr(args, "json", False):
        print_json(schedule.as_dict())
    else:
        print_table([_line(schedule)], COLUMNS)
    return 0
