"""`syncflow emulators`: APISmith and ScheduleHub in the foreground, each in its own process."""

import argparse
import os
import subprocess
import sys
import time

from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS
from syncflow_dagster.settings import load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--rows", type=int, default=10_000, help="work orders in the ERP")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated ERP")
    parser.add_argument("--operations-per-order", type=float, default=3.0)
    parser.add_argument("--bad-fraction", type=float, default=0.002, help="share of bad rows")
    parser.add_argument("--faults", default="", help="fault spec for both, e.g. 429=0.05,drop=0.01")
    parser.add_argument("--apismith-port", type=int, default=8007)
    parser.add_argument("--schedulehub-port", type=int, default=5180)
    parser.add_argument(
        "--hub-db", default=None, help="ScheduleHub SQLite file (default: DATA_DIR/schedulehub.db)"
    )


def run(args: argparse.Namespace) -> int:
    """Start both emulators and wait until interrupted (or one of them ends)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    hub_db = args.hub_db or str(settings.data_dir / "schedulehub.db")
    env = {
        **os.environ,
        "APISMITH_TOKEN": settings.apismith_token.get_secret_value(),
        "SCHEDULEHUB_TOKEN": settings.schedulehub_token.get_secret_value(),
    }
    py = [sys.executable, "-m"]
    commands = [
        [
            *py,
            "syncflow_dagster.emulators.apismith",
            "--port",
            str(args.apismith_port),
            "--rows",
            str(args.rows),
            "--seed",
            str(args.seed),
            "--operations-per-order",
            str(args.operations_per_order),
            "--bad-fraction",
            str(args.bad_fraction),
            "--erp-timezone",
            settings.erp_timezone,
            "--faults",
            args.faults,
        ],
        [
            *py,
            "syncflow_dagster.emulators.schedulehub",
            "--port",
            str(args.schedulehub_port),
            "--db",
            hub_db,
            "--schemas",
            str(SCHEDULEHUB_SCHEMAS),
            *(["--faults", args.faults] if args.faults else []),
        ],
    ]
    processes = [subprocess.Popen(cmd, env=env) for cmd in commands]
    print(
        "tokens: APISMITH_TOKEN / SCHEDULEHUB_TOKEN from the settings (.env); Ctrl-C stops both",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    codes = [p.returncode for p in processes]
    return 0 if all(c in (0, -15, None) for c in codes) else 1
