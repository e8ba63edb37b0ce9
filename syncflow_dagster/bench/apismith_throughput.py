"""How fast the APISmith emulator serves work orders as NDJSON over real HTTP.

    uv run python -m syncflow_dagster.bench.apismith_throughput --rows 1000000

Starts the emulator in its own process (so client and server do not share a GIL), then
reads every work order page by page (``Accept: application/x-ndjson``, ``limit`` 50000)
with httpx, following ``X-Next-Cursor``, and reports rows/s and MB/s of the read alone.
"""

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass

import httpx
import psutil

from syncflow_dagster.testing.apismith import apismith_process

NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Result:
    """What one run measured."""

    rows: int
    pages: int
    bytes: int
    seconds: float
    startup_seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows read per second."""
        return self.rows / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        """Body megabytes (10**6 bytes) read per second."""
        return self.bytes / 1e6 / self.seconds


def read_all(client: httpx.Client, entity: str, limit: int) -> tuple[int, int, int]:
    """Read every record of ``entity``; returns (rows, pages, bytes)."""
    rows = pages = size = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = client.get(
            f"/api/v1/entities/{entity}/records", params=params, headers={"Accept": NDJSON}
        )
        response.raise_for_status()
        body = response.content
        rows += body.count(b"\n")
        size += len(body)
        pages += 1
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return rows, pages, size


def run(rows: int, limit: int, seed: int) -> Result:
    """Start the emulator with ``rows`` work orders and read them all once."""
    started = time.perf_counter()
    with apismith_process(rows=rows, seed=seed, operations_per_order=0) as api:
        startup = time.perf_counter() - started
        with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as client:
            expected = client.get("/api/v1/entities/work_orders/count").json()["count"]
            begin = time.perf_counter()
            got, pages, size = read_all(client, "work_orders", limit)
            seconds = time.perf_counter() - begin
    if got != expected:
        raise RuntimeError(f"read {got} rows, the server has {expected}")
    return Result(got, pages, size, seconds, startup)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m syncflow_dagster.bench.apismith_throughput")
    parser.add_argument("--rows", type=int, default=1_000_000, help="work orders to serve")
    parser.add_argument("--limit", type=int, default=50_000, help="rows per page")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.rows, args.limit, args.seed)
    machine = f"{platform.machine()}, {psutil.cpu_count()} CPUs, python {platform.python_version()}"
    if args.json:
        print(
            json.dumps(
                {
                    **asdict(result),
                    "rows_per_second": result.rows_per_second,
                    "megabytes_per_second": result.megabytes_per_second,
                    "machine": machine,
                }
            )
        )
        return 0
    print(f"APISmith NDJSON throughput ({machine})")
    print(f"  emulator start (generate {args.rows} work orders): {result.startup_seconds:.1f} s")
    print(
        f"  read {result.rows} rows in {result.pages} pages of {args.limit}: {result.seconds:.2f} s"
    )
    print(f"  {result.rows_per_second:,.0f} rows/s, {result.megabytes_per_second:,.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
