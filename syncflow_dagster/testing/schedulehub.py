"""The ScheduleHub emulator for tests and benchmarks: in a background thread, or its own process.

    with running_schedulehub() as hub:
        client = ScheduleHubClient(hub.url, hub.token)
        ...
        assert hub.store.count("items") == 3
        hub.store.records("items")  # every stored record, by external_id

``schedulehub_process`` runs ``python -m syncflow_dagster.emulators.schedulehub``
instead, so the server has a core (and a GIL) of its own, and can be killed.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from syncflow_dagster.emulators.common.faults import FaultInjector, FaultPlan
from syncflow_dagster.emulators.common.serving import free_port, serve_in_thread
from syncflow_dagster.emulators.schedulehub.app import create_app
from syncflow_dagster.emulators.schedulehub.store import HubStore
from syncflow_dagster.paths import SCHEDULEHUB_SCHEMAS

TEST_TOKEN = "schedulehub-test-token"


@dataclass(frozen=True)
class RunningScheduleHub:
    """A served emulator: its base URL and token, its fault injector, its store (in-process)."""

    url: str
    token: str = field(repr=False)
    injector: FaultInjector
    store: HubStore

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this hub."""
        return {"Authorization": f"Bearer {self.token}"}


def _plan(faults: FaultPlan | str | None) -> FaultPlan | None:
    return FaultPlan.parse(faults) if isinstance(faults, str) else faults


@contextmanager
def running_schedulehub(
    schemas_path: str | Path = SCHEDULEHUB_SCHEMAS,
    db_path: str | Path | None = None,
    token: str = TEST_TOKEN,
    faults: FaultPlan | str | None = None,
    port: int = 0,
) -> Iterator[RunningScheduleHub]:
    """Serve the emulator on loopback (``port``, or a free one) in a background thread."""
    app = create_app(schemas_path, db_path, token, _plan(faults))
    try:
        with serve_in_thread(app, port=port) as url:
            yield RunningScheduleHub(url, token, app.injector, app.store)
    finally:
        app.close()


@dataclass
class ScheduleHubProcess:
    """An emulator running in its own process."""

    url: str
    token: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a crash would."""
        self.process.kill()
        self.process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ScheduleHub emulator exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"ScheduleHub emulator at {url} did not start within {timeout}s")


@contextmanager
def schedulehub_process(
    schemas_path: str | Path = SCHEDULEHUB_SCHEMAS,
    db_path: str | Path | None = None,
    token: str = TEST_TOKEN,
    faults: str = "",
    *,
    port: int = 0,
    timeout: float = 120.0,
) -> Iterator[ScheduleHubProcess]:
    """Run ``python -m syncflow_dagster.emulators.schedulehub`` until exit (then SIGTERM).

    The token goes through the environment, not the command line. The server
    also stops if this process dies without cleaning up (``--exit-with-parent``;
    on Linux that is tied to the thread that started it, so keep the ``with``
    block on one thread).
    """
    port = port or free_port()
    where = ["--db", str(db_path)] if db_path is not None else ["--memory"]
    command = [
        sys.executable,
        "-m",
        "syncflow_dagster.emulators.schedulehub",
        "--port",
        str(port),
        "--schemas",
        str(schemas_path),
        *where,
        *(["--faults", faults] if faults else []),
        "--exit-with-parent",
    ]
    env = {**os.environ, "SCHEDULEHUB_TOKEN": token}
    with tempfile.TemporaryDirectory(prefix="schedulehub-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process, log, timeout)
            yield ScheduleHubProcess(url, token, process)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
