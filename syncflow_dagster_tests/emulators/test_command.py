"""`syncflow emulators`: the local world's emulators, changing their ERP, stopping them, Ctrl-C."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncflow_dagster.emulators.apismith import ErpDataset
from syncflow_dagster.paths import PROJECT_DIR
from syncflow_dagster.settings import DEMO_APISMITH_TOKEN
from syncflow_dagster.testing.local_world import port_in_use
from syncflow_dagster_tests.walkthrough.sandbox import sandbox_env, syncflow

AUTH = {"Authorization": f"Bearer {DEMO_APISMITH_TOKEN}"}


class Served:
    """``syncflow emulators`` running in the foreground of a terminal of its own."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("syncflow")), "emulators", *args],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, marker: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            assert self.process.poll() is None, self.text
            assert time.monotonic() < deadline, f"no {marker!r} in:\n{self.text}"
            time.sleep(0.1)

    def ctrl_c(self) -> int:
        """What the terminal does on Ctrl-C: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)

    def ports(self) -> list[int]:
        return [int(self.env[k].rsplit(":", 1)[1]) for k in ("APISMITH_URL", "SCHEDULEHUB_URL")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return sandbox_env(tmp_path)


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[Served]:
    world = Served(env, "--rows", "60", "--seed", "4")
    world.wait_for("Ctrl-C stops everything")
    yield world
    if world.process.poll() is None:
        os.killpg(world.process.pid, signal.SIGKILL)
        world.process.wait(timeout=30)


def test_a_new_world_is_generated_served_and_ended_by_ctrl_c_without_a_traceback(
    served: Served, env: dict[str, str]
) -> None:
    data = Path(env["DATA_DIR"])
    assert ErpDataset.load(data / "erp.zip").spec.work_orders == 60
    count = httpx.get(f"{env['APISMITH_URL']}/api/v1/entities/work_orders/count", headers=AUTH)
    assert (
        count.json()["count"]
        == ErpDataset.load(data / "erp.zip").ground_truth("work_orders").height
    )
    assert httpx.get(f"{env['SCHEDULEHUB_URL']}/api/v1/health").status_code == 200
    assert served.ctrl_c() == 0
    assert "Traceback" not in served.text and "KeyboardInterrupt" not in served.text
    for log in (data / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), log
    assert not any(port_in_use("127.0.0.1", p) for p in served.ports())
    assert not list((data / "run").glob("*.pid"))


def test_the_erp_is_changed_by_command_and_the_changes_are_kept(
    served: Served, env: dict[str, str]
) -> None:
    data = Path(env["DATA_DIR"])
    done = syncflow(env, "emulators", "update", "work_orders", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("updated 3 work_orders (seed 1): WO-")
    assert "sync_work_orders_job" in done.stdout
    mine = '{"WO_NO": "WO-MINE0001", "ITEM_NO": "ITM-000001", "PRIORITY": 1}'
    done = syncflow(env, "emulators", "insert-rows", "work_orders", mine)
    assert done.returncode == 0 and "WO-MINE0001" in done.stdout, done.stderr
    done = syncflow(
        env, "emulators", "update-keys", "work_orders", "WO-MINE0001", "--set", "PRIORITY=9"
    )
    assert done.returncode == 0 and done.stdout.startswith("updated 1 work_orders"), done
    first_op = (
        ErpDataset.load(data / "erp.zip").ground_truth("work_order_operations").row(0, named=True)
    )
    key = f"{first_op['WO_NO']},{first_op['OP_SEQ']}"
    done = syncflow(env, "emulators", "delete-keys", "work_order_operations", key)
    assert done.returncode == 0 and done.stdout.startswith("deleted 1 work_order_operations")
    # The ERP refuses what an ERP would refuse, saying why.
    done = syncflow(env, "emulators", "insert-rows", "work_orders", mine)
    assert done.returncode == 1 and "exists already" in done.stderr, done
    done = syncflow(env, "emulators", "update", "machines", "1")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    # Saved with every change: a restart serves them.
    truth = ErpDataset.load(data / "erp.zip").ground_truth("work_orders")
    mine_now = truth.filter(truth["WO_NO"] == "WO-MINE0001")
    assert mine_now["PRIORITY"].to_list() == [9]
    assert served.ctrl_c() == 0
    again = Served(env)
    try:
        again.wait_for("Ctrl-C stops everything")
        answer = httpx.get(f"{env['APISMITH_URL']}/api/v1/entities/work_orders/count", headers=AUTH)
        assert answer.json()["count"] == truth.height
    finally:
        again.ctrl_c()


def test_stop_ends_the_world_s_emulators_and_new_options_do_not_replace_its_erp(
    served: Served, env: dict[str, str]
) -> None:
    done = syncflow(env, "emulators", "stop")
    assert done.returncode == 0 and "stopped APISmith emulator (pid" in done.stdout, done
    assert served.process.wait(timeout=60) == 0  # asked to stop: a normal end
    assert not any(port_in_use("127.0.0.1", p) for p in served.ports())
    done = syncflow(env, "emulators", "stop")
    assert done.stdout.strip() == "no emulator of the world is running"
    done = syncflow(env, "emulators", "--rows", "999")
    assert done.returncode == 2 and "holds the local world's ERP already" in done.stderr
    done = syncflow(env, "emulators", "update", "items", "1")
    assert done.returncode == 1
    assert f"no APISmith emulator answers at {env['APISMITH_URL']}" in done.stderr


def test_a_busy_port_or_a_remote_url_is_refused_with_the_setting_named(
    env: dict[str, str],
) -> None:
    with served_elsewhere(env["APISMITH_URL"]):
        done = syncflow(env, "emulators")
    assert done.returncode == 2 and "APISmith emulator port" in done.stderr
    assert "in use" in done.stderr
    done = syncflow({**env, "SCHEDULEHUB_URL": "https://hub.example.com"}, "emulators")
    assert done.returncode == 2 and "SCHEDULEHUB_URL is https://hub.example.com" in done.stderr


class served_elsewhere:  # noqa: N801 - a context manager named like one
    """Something else listening on the port of ``url``."""

    def __init__(self, url: str) -> None:
        import socket  # noqa: PLC0415

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        self.sock.listen()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
