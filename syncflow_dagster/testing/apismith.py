"""Serve the APISmith emulator for tests, the demo and the benchmark.

In-process (a background thread; the dataset, its ground truth and the fault injector
stay reachable)::

    with running_apismith(DatasetSpec(work_orders=1000)) as api:
        httpx.get(f"{api.url}/api/v1/entities", headers=api.headers)
        api.dataset.ground_truth("work_orders")

In its own process (for the benchmark: the client does not share the server's GIL)::

    with apismith_process(rows=1_000_000, operations_per_order=0) as api:
        ...
"""

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from syncflow_dagster.emulators.apismith.app import ApiSmithApp, create_app
from syncflow_dagster.emulators.apismith.dataset import DatasetSpec, ErpDataset
from syncflow_dagster.emulators.common.faults import FaultInjector, FaultPlan
from syncflow_dagster.emulators.common.serving import serve_in_thread


@dataclass(frozen=True)
class ApiSmithHandle:
    """A running emulator: where it is, its token, its data and its fault injector."""

    url: str
    token: str = field(repr=False)
    dataset: ErpDataset
    injector: FaultInjector
    app: ApiSmithApp

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this emulator."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client with base URL and auth set."""
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)  # type: ignore[arg-type]


def _plan(faults: FaultPlan | str | None) -> FaultPlan:
    return faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)


@contextmanager
def running_apismith(
    spec: DatasetSpec | None = None,
    token: str | None = None,
    faults: FaultPlan | str | None = None,
    dataset: ErpDataset | None = None,
    port: int = 0,
) -> Iterator[ApiSmithHandle]:
    """Serve an emulator on loopback (``port``, or a free one) in a background thread.

    Args:
        spec: what to generate (ignored when ``dataset`` is given).
        token: the bearer token; a random one when not given.
        faults: a FaultPlan or a fault spec string.
        dataset: serve this dataset instead of generating one (e.g. to restart a server
            over the same data).
        port: the loopback port to listen on (0: a free one).
    """
    data = dataset if dataset is not None else ErpDataset(spec or DatasetSpec())
    secret = token or secrets.token_urlsafe(16)
    app = create_app(data, secret, _plan(faults))
    with serve_in_thread(app, port=port) as url:
        yield ApiSmithHandle(url=url, token=secret, dataset=data, injector=app.injector, app=app)


@dataclass(frozen=True)
class ApiSmithProcess:
    """An emulator running in a child process."""

    url: str
    token: str = field(repr=False)
    process: subprocess.Popen[str]

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this emulator."""
        return {"Authorization": f"Bearer {self.token}"}


_LISTENING = re.compile(r"listening on (http://\S+)")


@contextmanager
def apismith_process(
    rows: int,
    *,
    seed: int = 42,
    operations_per_order: float = 3.0,
    faults: str = "",
    token: str | None = None,
    startup_timeout: float = 300.0,
) -> Iterator[ApiSmithProcess]:
    """Run ``python -m syncflow_dagster.emulators.apismith`` and wait until it answers."""
    secret = token or secrets.token_urlsafe(16)
    env = {**os.environ, "APISMITH_TOKEN": secret}
    command = [
        sys.executable,
        "-m",
        "syncflow_dagster.emulators.apismith",
        "--port",
        "0",
        "--rows",
        str(rows),
        "--seed",
        str(seed),
        "--operations-per-order",
        str(operations_per_order),
        "--faults",
        faults,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        url = _wait_until_up(process, startup_timeout)
        yield ApiSmithProcess(url=url, token=secret, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"APISmith process exited early (code {process.wait()})")
        match = _LISTENING.search(line)
        url = match.group(1) if match else None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"APISmith process exited (code {process.returncode})")
        time.sleep(0.05)
    raise RuntimeError(f"APISmith process at {url} did not answer within {timeout}s")
