"""The emulator's command: says where it listens, serves, refuses bad flags."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from syncflow_dagster.emulators.common.serving import free_port

MODULE = "syncflow_dagster.emulators.schedulehub"


def _get_entities(port: int, token: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(
                f"http://127.0.0.1:{port}/api/v1/entities",
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serves_and_prints_where(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SCHEDULEHUB_TOKEN": "cli-secret-token"}
    command = [sys.executable, "-m", MODULE, "--port", str(port), "--db", str(tmp_path / "h.db")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert f"listening on http://127.0.0.1:{port}" in line
        assert "h.db" in line and "cli-secret-token" not in line
        assert _get_entities(port, "cli-secret-token").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0  # a graceful stop


def test_bad_fault_spec_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "--port", "0", "--faults", "boom=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "boom" in result.stderr


def test_server_stops_when_its_starter_dies() -> None:
    script = (
        "import os\n"
        "from syncflow_dagster.testing.schedulehub import schedulehub_process\n"
        "with schedulehub_process() as hub:\n"
        "    print(hub.process.pid, flush=True)\n"
        "    os._exit(0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    server = int(result.stdout.strip())
    deadline = time.monotonic() + 20
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{server}").exists()
