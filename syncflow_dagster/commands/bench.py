"""`syncflow bench` (`make bench`): the end-to-end benchmark; figures into docs/BENCHMARKS.md.

``--background`` runs the background-sync benchmark instead: a big table loaded
night by night in chunks (``syncflow bench --background --rows 7000000``).

The command is product; the benchmark it launches (``syncflow_dagster.bench``:
emulators, a throwaway PostgreSQL, reconciliation) is a sandbox tool, imported
only when the command runs.
"""

import argparse
import time
from pathlib import Path

from syncflow_dagster.paths import PROJECT_DIR

DOCS = PROJECT_DIR / "docs" / "BENCHMARKS.md"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--rows", type=int, default=1_000_000, help="work orders in the ERP")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the JSON result (default bench-results/latest.json, with --background "
        "bench-results/background.json)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/BENCHMARKS.md")
    background = parser.add_argument_group("background sync (--background)")
    background.add_argument(
        "--background",
        action="store_true",
        help="load the work orders night by night through background runs, in chunks",
    )
    background.add_argument(
        "--chunk-rows", type=int, default=None, help="BACKGROUND_CHUNK_ROWS (default: the setting)"
    )
    background.add_argument(
        "--rows-per-night", type=int, default=1_000_000, help="the nightly budget"
    )
    background.add_argument(
        "--target-nights",
        type=int,
        default=None,
        help="spread the table over this many nights instead of a fixed budget",
    )


def run(args: argparse.Namespace) -> int:
    """Run the scenarios, print PASS/FAIL per scenario, write the JSON (and the docs table)."""
    if args.background:
        return _background(args)
    # The sandbox: loaded only when the benchmark runs (the product never imports it).
    from syncflow_dagster.bench.pipeline import (  # noqa: PLC0415
        run_benchmark,
        update_docs,
        write_results,
    )

    started = time.monotonic()
    out = args.out or Path("bench-results/latest.json")
    results = run_benchmark(args.rows)
    doc = write_results(results, args.rows, out)
    if not args.no_docs:
        update_docs(doc, DOCS)
    verdict = all(r.passed for r in results)
    print(
        f"\n{'PASS' if verdict else 'FAIL'}: {sum(r.passed for r in results)} of {len(results)} "
        f"scenarios passed ({time.monotonic() - started:.0f}s in all); results in {out}"
    )
    return 0 if verdict else 1


def _background(args: argparse.Namespace) -> int:
    """The background-sync benchmark: nights, chunks, memory, CPU; PASS/FAIL."""
    from syncflow_dagster.bench.background import (  # noqa: PLC0415
        run_background_benchmark,
        update_background_docs,
        write_background_results,
    )

    started = time.monotonic()
    out = args.out or Path("bench-results/background.json")
    result = run_background_benchmark(
        args.rows,
        chunk_rows=args.chunk_rows,
        rows_per_night=None if args.target_nights else args.rows_per_night,
        target_nights=args.target_nights,
    )
    command = f"syncflow bench --background --rows {args.rows}"
    if args.chunk_rows:
        command += f" --chunk-rows {args.chunk_rows}"
    if args.target_nights:
        command += f" --target-nights {args.target_nights}"
    elif args.rows_per_night != 1_000_000:
        command += f" --rows-per-night {args.rows_per_night}"
    doc = write_background_results(result, command, out)
    if not args.no_docs:
        update_background_docs(doc, DOCS)
    print(
        f"\n{'PASS' if result.passed else 'FAIL'}: background sync "
        f"({time.monotonic() - started:.0f}s in all); results in {out}"
    )
    return 0 if result.passed else 1
