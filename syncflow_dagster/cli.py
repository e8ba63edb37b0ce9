"""`syncflow`: the project's command line. Each subcommand lives in `commands/`."""

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from syncflow_dagster.logs import setup_logging
from syncflow_dagster.settings import SettingsError, load_settings

# module name in syncflow_dagster.commands -> one-line help
COMMANDS: dict[str, str] = {
    "demo": "run the main job: emulators plus every entity synced through Dagster, twice",
    "emulators": "serve the APISmith and ScheduleHub emulators in the foreground",
    "db": "manage the state database (migrations)",
    "bench": "the 1M-row benchmark; writes docs/BENCHMARKS.md",
    "failed": "dead letters by hand: list, show, retry, resolve, discard",
    "pending": "children waiting for a parent, by hand: list, retry, drop",
    "api": "serve the operations API (REST, Prometheus metrics, health) on port 8008",
    "schedules": "background syncs: list, show, create, update, pause, resume, reset, trigger",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="syncflow", description="SyncFlow command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"syncflow_dagster.commands.{name}")
        sub_parser = sub.add_parser(name.replace("_", "-"), help=help_text, description=help_text)
        module.configure(sub_parser)
        sub_parser.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `syncflow` console script."""
    args = build_parser().parse_args(argv)
    # LOG_LEVEL, DEBUG and APP_ENV for every subcommand; a bad setting is the
    # subcommand's to report (it reads the settings itself and says what is wrong).
    with contextlib.suppress(SettingsError):
        setup_logging(load_settings())
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
