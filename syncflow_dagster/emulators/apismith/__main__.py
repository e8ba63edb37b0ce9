r"""Run the APISmith emulator in its own process.

    APISMITH_TOKEN=secret python -m syncflow_dagster.emulators.apismith --port 8007 \\
        --rows 100000 --seed 42 --faults "429=0.05" --operations-per-order 3

Prints ``APISmith listening on http://HOST:PORT`` (with the chosen port when ``--port 0``)
once the data is generated, then serves until interrupted (Ctrl-C or SIGTERM end it
quietly). The token comes from the environment variable named by ``--token-env`` so
that it never shows in a process list.

``--world FILE`` serves a persistent ERP: the dataset saved in FILE when it exists
(the generating options are then ignored), else one generated from the options and
written there; every change made through the admin API is written back to FILE.
"""

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from syncflow_dagster.emulators.apismith.app import create_app
from syncflow_dagster.emulators.apismith.dataset import DatasetSpec, ErpDataset
from syncflow_dagster.emulators.common.faults import FaultPlan, FaultSpecError
from syncflow_dagster.emulators.common.serving import free_port, serve_forever


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m syncflow_dagster.emulators.apismith")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8007, help="0 picks a free port")
    parser.add_argument("--rows", type=int, default=10_000, help="how many work orders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--work-centers", type=int, default=None)
    parser.add_argument("--operations-per-order", type=float, default=3.0)
    parser.add_argument("--bad-fraction", type=float, default=0.002)
    parser.add_argument("--erp-timezone", default="Europe/Berlin")
    parser.add_argument("--faults", default="", help="fault spec, e.g. 429=0.05,drop=0.01")
    parser.add_argument("--token-env", default="APISMITH_TOKEN")
    parser.add_argument(
        "--world",
        metavar="FILE",
        default=None,
        help="serve the ERP saved in FILE (generate and save it there if missing); "
        "admin changes are saved back",
    )
    return parser.parse_args(argv)


def _dataset(args: argparse.Namespace) -> tuple[ErpDataset, str]:
    """The dataset to serve, and how it came to be."""
    world = Path(args.world) if args.world else None
    started = time.perf_counter()
    if world is not None and world.exists():
        dataset = ErpDataset.load(world)
        rows = dataset.ground_truth("work_orders").height
        return dataset, f"loaded {rows} work orders from {world} in {_since(started)}"
    spec = DatasetSpec(
        seed=args.seed,
        work_orders=args.rows,
        items=args.items,
        work_centers=args.work_centers,
        operations_per_order=args.operations_per_order,
        bad_fraction=args.bad_fraction,
        erp_timezone=args.erp_timezone,
    )
    dataset = ErpDataset(spec)
    made = f"generated {args.rows} work orders in {_since(started)}"
    if world is not None:
        dataset.save(world)
        made += f", saved to {world}"
    return dataset, made


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f}s"


def main(argv: list[str] | None = None) -> int:
    """Generate (or load) the dataset, then serve it until interrupted."""
    args = parse_args(argv)
    token = os.environ.get(args.token_env)
    if not token:
        print(f"error: set the bearer token in ${args.token_env}", file=sys.stderr)
        return 2
    try:
        faults = FaultPlan.parse(args.faults)
    except FaultSpecError as exc:
        print(f"error: --faults: {exc}", file=sys.stderr)
        return 2
    try:
        dataset, made = _dataset(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    world = args.world
    on_change = (lambda data: data.save(world)) if world else None
    port = args.port or free_port(args.host)
    print(f"APISmith {made}", flush=True)
    print(f"APISmith listening on http://{args.host}:{port}", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again:
    # end quietly instead of with a traceback.
    signal.signal(signal.SIGTERM, _exit_quietly)
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(create_app(dataset, token, faults, on_change), args.host, port)
    return 0


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
