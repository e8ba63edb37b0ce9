"""A real ``dagster dev`` for tests: webserver and daemon over a temporary instance.

``dagster_dev(tmp, env)`` writes a DAGSTER_HOME (the project's ``dagster.yaml``)
and a workspace for SyncFlow's code location, starts ``dagster dev`` on a free
loopback port in a process group of its own, and waits until the webserver
serves the code location. What the operations API needs (GraphQL launches,
terminations, reloads, the daemon's heartbeats) then works as in production.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx

from syncflow_dagster.emulators.common.serving import free_port
from syncflow_dagster.testing.dagster_daemon import fresh_home

_LOADED = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { jobs { name } } } } }
"""


@dataclass
class DevDeployment:
    """A running ``dagster dev``: its URL, home, instance and log."""

    url: str
    home: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 80) -> str:
        """The end of ``dagster dev``'s output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, what: str, predicate: object, timeout: float = 180) -> object:
        """Poll ``predicate`` until it returns something truthy; fail with the log's end."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert self.process.poll() is None, f"dagster dev died:\n{self.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.tail()}")


def _serving(url: str) -> bool:
    try:
        answer = httpx.post(f"{url}/graphql", json={"query": _LOADED}, timeout=5)
        nodes = answer.json()["data"]["repositoriesOrError"].get("nodes", [])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return any(job["name"] == "resolve_failed_records_job" for n in nodes for job in n["jobs"])


@contextmanager
def dagster_dev(tmp: Path, env: Mapping[str, str], timeout: float = 240) -> Iterator[DevDeployment]:
    """``dagster dev`` (webserver + daemon) over a fresh instance and SyncFlow's code location."""
    home, workspace, instance = fresh_home(tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    log = tmp / "dagster-dev.log"
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-w",
        str(workspace),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=full_env,
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deployment = DevDeployment(url, home, full_env, instance, process, log)
        deployment.wait_for("the webserver to serve SyncFlow", lambda: _serving(url), timeout)
        yield deployment
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        instance.dispose()
