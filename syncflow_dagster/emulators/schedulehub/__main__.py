"""Serve the ScheduleHub emulator in the foreground.

    python -m syncflow_dagster.emulators.schedulehub --port 5180 [--db FILE | --memory]
        [--faults SPEC] [--schemas FILE] [--host HOST]

The bearer token comes from ``--token``, else the ``SCHEDULEHUB_TOKEN`` environment
variable, else the demo token; it is never printed. Prints one line with the URL it
listens on. ``--port 0`` picks a free port.
"""

import argparse
import ctypes
import gc
import os
import signal
import sys
from types import FrameType

from syncflow_dagster.emulators.common.faults import FaultPlan, FaultSpecError
from syncflow_dagster.emulators.common.serving import free_port, serve_forever
from syncflow_dagster.emulators.schedulehub.app import create_app
from syncflow_dagster.emulators.schedulehub.schemas import SchemaConfigError
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS

TOKEN_ENV = "SCHEDULEHUB_TOKEN"


def _demo_token() -> str:
    from syncflow_dagster.settings import DEMO_SCHEDULEHUB_TOKEN  # noqa: PLC0415 - heavy import

    return DEMO_SCHEDULEHUB_TOKEN


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m syncflow_dagster.emulators.schedulehub",
        description="Serve the ScheduleHub emulator (the ingest API of the shared contract).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5180, help="0 picks a free port")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="FILE", help="SQLite file kept across restarts")
    where.add_argument("--memory", action="store_true", help="keep records in memory (default)")
    parser.add_argument("--faults", default="", metavar="SPEC", help="e.g. 429=0.05,lost=0.01")
    parser.add_argument("--schemas", default=str(SCHEDULEHUB_SCHEMAS), metavar="FILE")
    parser.add_argument("--token", default=None, help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (Linux)",
    )
    return parser


def _exit_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies, so no server is left orphaned."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted."""
    args = _parser().parse_args(argv)
    if args.exit_with_parent:
        _exit_with_parent()
    token = args.token or os.environ.get(TOKEN_ENV) or _demo_token()
    try:
        app = create_app(args.schemas, args.db, token, FaultPlan.parse(args.faults))
    except (SchemaConfigError, FaultSpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A server holding millions of records: keep the collector off what is loaded
    # at start, and run it seldom (batches allocate tens of thousands of objects).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    port = args.port or free_port(args.host)
    store = f"SQLite file {args.db}" if args.db else "in memory"
    faults = f", faults {args.faults}" if args.faults else ""
    url = f"http://{args.host}:{port}"
    print(f"ScheduleHub emulator listening on {url} ({store}{faults})", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again:
    # turn that into a normal exit so the store is closed.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        serve_forever(app, args.host, port)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
