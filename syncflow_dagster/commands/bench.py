"""`syncflow bench` (`make bench`): the end-to-end benchmark; figures into docs/BENCHMARKS.md."""

import argparse
import time
from pathlib import Path

from syncflow_dagster.bench.pipeline import run_benchmark, update_docs, write_results
from syncflow_dagster.paths import PROJECT_DIR


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--rows", type=int, default=1_000_000, help="work orders in the ERP")
    parser.add_argument("--out", type=Path, default=Path("bench-results/latest.json"))
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/BENCHMARKS.md")


def run(args: argparse.Namespace) -> int:
    """Run the scenarios, print PASS/FAIL per scenario, write the JSON (and the docs table)."""
    started = time.monotonic()
    results = run_benchmark(args.rows)
    doc = write_results(results, args.rows, args.out)
    if not args.no_docs:
        update_docs(doc, PROJECT_DIR / "docs" / "BENCHMARKS.md")
    verdict = all(r.passed for r in results)
    print(
        f"\n{'PASS' if verdict else 'FAIL'}: {sum(r.passed for r in results)} of {len(results)} "
        f"scenarios passed ({time.monotonic() - started:.0f}s in all); results in {args.out}"
    )
    return 0 if verdict else 1
