"""A persistent ERP: a saved dataset loads back exactly, and ``--world`` serves and keeps it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from syncflow_dagster.emulators.apismith import ENTITIES, DatasetSpec, ErpDataset
from syncflow_dagster.emulators.common.serving import free_port

SPEC = DatasetSpec(seed=5, work_orders=400, bad_fraction=0.05)
TOKEN = "apismith-world-test-token"


def _same(a: ErpDataset, b: ErpDataset) -> None:
    """What a client sees and what the checks compare against are identical."""
    assert a.spec == b.spec and a.max_rowversion == b.max_rowversion
    for name in ENTITIES:
        records_a, keys_a = a.views(name)
        records_b, keys_b = b.views(name)
        assert records_a.buffer == records_b.buffer, name
        assert keys_a.json.equals(keys_b.json), name
        assert a.ground_truth(name).equals(b.ground_truth(name)), name
        assert a.bad_rows(name).equals(b.bad_rows(name)), name


def _changed() -> ErpDataset:
    data = ErpDataset(SPEC)
    data.update("work_orders", 7, seed=1)
    data.insert("items", 3, seed=2)
    data.delete("work_order_operations", 5, seed=3)
    data.insert_rows("work_orders", [{"WO_NO": "WO-WORLD01", "ITEM_NO": "ITM-NOT-YET"}])
    assert data.update_keys("items", [["ITM-000001"]], {"DESCRIPTION": "changed by hand"})
    view, _ = data.views("work_centers")
    data.serve_raw_lines("work_centers", {(view.keys[0][0],): b'{"WC_CODE": \xff}'})
    return data


def test_a_saved_dataset_loads_back_exactly_and_changes_alike(tmp_path: Path) -> None:
    original = _changed()
    path = tmp_path / "erp.zip"
    original.save(path)
    loaded = ErpDataset.load(path)
    _same(original, loaded)
    # The next changes pick the same rows, keys and rowversions on both.
    for data in (original, loaded):
        data.update("work_orders", 4, seed=9)
        data.insert("work_order_operations", 6, seed=10)
        data.delete("items", 1, seed=11)
        data.insert_rows("items", [{"ITEM_NO": "ITM-NOT-YET"}])
    _same(original, loaded)
    assert not list(tmp_path.glob(".*.tmp"))  # written in place atomically, nothing left over


def test_a_file_that_is_not_a_saved_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "erp.zip"
    path.write_text("not a zip")
    with pytest.raises(ValueError, match="not a saved ERP dataset"):
        ErpDataset.load(path)


def _serve(world: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    """The emulator over ``world`` in a process of its own: the process, its URL, its first line."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "syncflow_dagster.emulators.apismith",
        "--port",
        str(port),
        "--world",
        str(world),
        *extra,
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "APISMITH_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert "listening on" in process.stdout.readline()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, url, first


def _count(url: str, entity: str) -> int:
    answer = httpx.get(
        f"{url}/api/v1/entities/{entity}/count", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return int(answer.json()["count"])


def _stop(process: subprocess.Popen[str], how: int) -> str:
    process.send_signal(how)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return err


def test_the_world_option_keeps_admin_changes_across_restarts(tmp_path: Path) -> None:
    world = tmp_path / "erp.zip"
    process, url, made = _serve(world, "--rows", "200", "--seed", "3")
    assert "generated 200 work orders" in made and str(world) in made
    before = _count(url, "items")
    added = httpx.post(
        f"{url}/admin/entities/items/insert",
        json={"n": 4, "seed": 1},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert added.status_code == 200, added.text
    _stop(process, signal.SIGINT)  # Ctrl-C: a clean exit, no traceback
    process, url, made = _serve(world, "--rows", "999")  # the saved world wins over the options
    assert "loaded 200 work orders" in made
    assert _count(url, "items") == before + 4
    _stop(process, signal.SIGTERM)
    saved = ErpDataset.load(world).ground_truth("items")
    keys = {tuple(k) for k in added.json()["keys"]}
    assert keys <= set(saved.select("ITEM_NO").rows())
    assert saved.filter(pl.col("ITEM_NO").is_in([k[0] for k in keys])).height == 4
