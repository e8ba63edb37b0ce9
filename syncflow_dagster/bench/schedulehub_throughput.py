"""How many records per second the ScheduleHub emulator accepts over real HTTP.

    uv run python -m syncflow_dagster.bench.schedulehub_throughput --records 1000000 [--db FILE]

Starts the emulator in its own process (in memory, then with a SQLite file),
ingests the items the work orders name as parents, then posts the work orders
— 11 fields each, one parent — in batches of 1000 from this process over a few
concurrent connections. The bodies are built before the clock starts, so the
client is not what is measured. Reports records/s and the server's CPU time.
"""

import argparse
import asyncio
import random
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psutil

from syncflow_dagster.testing.schedulehub import schedulehub_process

BATCH = 1000
STATUSES = ("planned", "released", "in_progress", "completed")
PLANNERS = ("a.meyer", "b.schulz", "c.wagner", "d.becker", None)


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def _item(rng: random.Random, n: int) -> dict[str, object]:
    return {
        "item_no": f"IT-{n:07d}",
        "description": f"Item {n} of the benchmark catalogue",
        "item_type": rng.choice(("make", "buy")),
        "uom": rng.choice(("EA", "KG", "M")),
        "standard_cost": round(rng.uniform(1, 500), 2),
        "lead_time_days": rng.randint(1, 60),
        "is_active": True,
        "created_on": "2023-04-17",
        "last_updated_at": "2024-06-30T22:15:04Z",
    }


def _work_order(rng: random.Random, n: int, item_no: str) -> dict[str, object]:
    start = date(2024, 1, 1) + timedelta(days=n % 365)
    return {
        "order_no": f"WO-{n:08d}",
        "item_no": item_no,
        "quantity": float(rng.randint(1, 500)),
        "completed_quantity": None if n % 3 else float(rng.randint(0, 10)),
        "status": rng.choice(STATUSES),
        "priority": rng.randint(1, 5),
        "start_date": start.isoformat(),
        "due_date": (start + timedelta(days=14)).isoformat(),
        "released_at": f"{start.isoformat()}T06:{n % 60:02d}:00+01:00",
        "planner": rng.choice(PLANNERS),
        "notes": "expedite" if n % 17 == 0 else None,
    }


@dataclass
class Workload:
    """Pre-built request bodies: the items first, then the work orders."""

    items: list[bytes]
    work_orders: list[bytes]
    n_items: int
    n_work_orders: int


def _bodies(records: Iterator[dict[str, object]], total: int, name: str) -> list[bytes]:
    bodies = []
    for start in range(0, total, BATCH):
        batch = [next(records) for _ in range(min(BATCH, total - start))]
        bodies.append(orjson.dumps({"batch_id": f"{name}-{start // BATCH}", "records": batch}))
    return bodies


def build_workload(n_work_orders: int, seed: int = 20240701) -> Workload:
    """Items (one per 20 work orders) and work orders naming them, as 1000-record bodies."""
    rng = random.Random(seed)
    n_items = max(1, n_work_orders // 20)
    item_ids = [_hex(rng, 16) for _ in range(n_items)]

    def items() -> Iterator[dict[str, object]]:
        for n, external_id in enumerate(item_ids):
            yield {
                "external_id": external_id,
                "op": "upsert",
                "data": _item(rng, n),
                "data_hash": _hex(rng, 32),
            }

    def work_orders() -> Iterator[dict[str, object]]:
        for n in range(n_work_orders):
            parent = rng.randrange(n_items)
            yield {
                "external_id": _hex(rng, 16),
                "op": "upsert",
                "data": _work_order(rng, n, f"IT-{parent:07d}"),
                "data_hash": _hex(rng, 32),
                "parents": [{"entity": "items", "external_id": item_ids[parent]}],
            }

    return Workload(
        _bodies(items(), n_items, "items"),
        _bodies(work_orders(), n_work_orders, "wo"),
        n_items,
        n_work_orders,
    )


def _requests(url: str, token: str, entity: str, bodies: list[bytes]) -> list[bytes]:
    """Complete HTTP/1.1 requests (keep-alive), built before the clock starts."""
    host = urlsplit(url).netloc
    head = (
        f"POST /api/v1/ingest/{entity} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    return [head + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in bodies]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
    if match is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    return status, await reader.readexactly(int(match.group(1)))


async def post_all(url: str, token: str, entity: str, requests: list[bytes], workers: int) -> int:
    """Send every request over ``workers`` keep-alive connections; the records created.

    A minimal HTTP/1.1 client on asyncio streams: the requests are complete byte
    strings, so the client spends next to nothing per batch and the figure is the
    server's.
    """
    parts = urlsplit(url)
    pending = iter(requests)
    created = 0

    async def worker() -> None:
        nonlocal created
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for request in pending:
                status, body = await _exchange(reader, writer, request)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
                created += body.count(b'"status":"created"')
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return created


@dataclass
class Figure:
    """One measured run."""

    mode: str
    records: int
    seconds: float
    server_cpu: float
    server_rss: int

    @property
    def rate(self) -> float:
        """Records accepted per second."""
        return self.records / self.seconds

    def line(self) -> str:
        """The run as one line of the report."""
        return (
            f"{self.mode:<12} {self.records:>10,} work orders in {self.seconds:6.2f} s"
            f" = {self.rate:>9,.0f} records/s  (server CPU {self.server_cpu:.2f} s,"
            f" {self.server_cpu / self.records * 1e6:.2f} µs/record;"
            f" server RSS {self.server_rss / 2**20:,.0f} MiB)"
        )


def run_mode(mode: str, workload: Workload, db_path: Path | None, workers: int) -> Figure:
    """Start an emulator, ingest the items, then time the work orders."""
    with schedulehub_process(db_path=db_path) as hub:
        server = psutil.Process(hub.process.pid)
        items_requests = _requests(hub.url, hub.token, "items", workload.items)
        items = asyncio.run(post_all(hub.url, hub.token, "items", items_requests, workers))
        if items != workload.n_items:
            raise RuntimeError(f"{items} of {workload.n_items} items created")
        requests = _requests(hub.url, hub.token, "work_orders", workload.work_orders)
        cpu0 = server.cpu_times()
        t0 = time.perf_counter()
        created = asyncio.run(post_all(hub.url, hub.token, "work_orders", requests, workers))
        seconds = time.perf_counter() - t0
        cpu1 = server.cpu_times()
        rss = server.memory_info().rss
        if created != workload.n_work_orders:
            raise RuntimeError(f"{created} of {workload.n_work_orders} work orders created")
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return Figure(mode, created, seconds, cpu, rss)


def main(argv: list[str] | None = None) -> None:
    """Build the workload, measure in memory and with a SQLite file, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000, help="work orders to ingest")
    parser.add_argument("--db", type=Path, help="SQLite file for the file run (must not exist)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent connections")
    parser.add_argument("--mode", choices=("memory", "sqlite", "both"), default="both")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per mode, each on a fresh server (best kept)"
    )
    args = parser.parse_args(argv)
    if args.db is not None and args.db.exists():
        parser.error(f"{args.db} exists; give a new file")
    t0 = time.perf_counter()
    workload = build_workload(args.records)
    size = sum(map(len, workload.work_orders))
    print(
        f"ScheduleHub throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" {psutil.cpu_count()} CPUs; {workload.n_items:,} items first, then"
        f" {workload.n_work_orders:,} work orders in batches of {BATCH}"
        f" ({size / workload.n_work_orders:.0f} bytes/record on the wire),"
        f" {args.workers} connections; bodies built in {time.perf_counter() - t0:.1f} s"
    )
    modes = [m for m in ("memory", "sqlite") if args.mode in (m, "both")]
    for mode in modes:
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="schedulehub-bench-") as tmp:
                db = None if mode == "memory" else (args.db or Path(tmp) / "schedulehub.db")
                if db is not None and db.exists():
                    db.unlink()
                label = "in-memory" if mode == "memory" else "sqlite-file"
                runs.append(run_mode(label, workload, db, args.workers))
            print(runs[-1].line(), flush=True)
        if args.repeat > 1:
            rates = sorted(f.rate for f in runs)
            print(
                f"{runs[0].mode:<12} best {rates[-1]:,.0f},"
                f" median {rates[len(rates) // 2]:,.0f} records/s"
                f" over {len(runs)} runs",
                flush=True,
            )


if __name__ == "__main__":
    main()
