"""The emulator in its own process (CLI and fixture helper) and the throughput benchmark."""

import os
import subprocess
import sys

import httpx
import orjson
import pytest

from syncflow_dagster.bench import apismith_throughput
from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.testing.apismith import apismith_process


def test_emulator_process_serves_the_same_data() -> None:
    with apismith_process(rows=300, seed=8, operations_per_order=1.5, faults="at=2:503") as api:
        assert "listening" not in repr(api) and api.token not in repr(api)
        with httpx.Client(base_url=api.url, headers=api.headers) as client:
            count = client.get("/api/v1/entities/work_order_operations/count").json()["count"]
            assert client.get("/api/v1/entities").status_code == 503
            first = client.get("/api/v1/entities/work_orders/records", params={"limit": 5})
    local = ErpDataset(DatasetSpec(seed=8, work_orders=300, operations_per_order=1.5))
    assert count == local.ground_truth("work_order_operations").height
    view, _ = local.views("work_orders")
    assert first.json()["records"] == [orjson.loads(x) for x in view.lines.head(5)]
    assert api.process.poll() is not None


def test_emulator_process_needs_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "APISMITH_TOKEN"}
    command = [sys.executable, "-m", "syncflow_dagster.emulators.apismith", "--rows", "10"]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "APISMITH_TOKEN" in done.stderr


def test_benchmark_reads_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert apismith_throughput.main(["--rows", "3000", "--limit", "1000"]) == 0
    out = capsys.readouterr().out
    assert "rows/s" in out and "MB/s" in out
    spec = DatasetSpec(seed=42, work_orders=3000, operations_per_order=0)
    rows = ErpDataset(spec).ground_truth("work_orders").height
    assert f"read {rows} rows in 4 pages of 1000" in out
