"""A real Dagster deployment for tests: a temporary instance, the workspace, the daemon.

``local_deployment(tmp, env)`` writes a DAGSTER_HOME (the project's
``dagster.yaml``) and a workspace file for SyncFlow's code location, and
starts ``dagster-daemon run`` as a process of its own: the run queue,
schedules, sensors and run monitoring all work as they do in production.
Runs are launched through the queue with ``dagster job launch`` (what a user
or a script does), and the test watches them on the same instance.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from syncflow_dagster.paths import PROJECT_DIR

FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


@dataclass
class LocalDeployment:
    """A Dagster home with a running daemon, and how to use it."""

    home: Path
    workspace: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    daemon: subprocess.Popen[bytes]
    log: Path

    def dagster(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``dagster`` command line against this deployment."""
        return subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), *args],
            env=self.env,
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def launch(self, job: str, *extra: str) -> None:
        """``dagster job launch`` of ``job`` through the run queue (no run config)."""
        done = self.dagster("job", "launch", "-w", str(self.workspace), "-j", job, *extra)
        assert done.returncode == 0, done.stderr[-3000:]

    def runs(self, job: str | None = None) -> list[dg.DagsterRun]:
        """Runs of the instance (of one job), newest first."""
        filters = dg.RunsFilter(job_name=job) if job else None
        return list(self.instance.get_runs(filters=filters))

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = 180) -> object:
        """Poll ``predicate`` until it returns something truthy; fail with the daemon's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert self.daemon.poll() is None, f"the daemon died:\n{self.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.tail()}")

    def finished_run(self, job: str, after: int = 0, timeout: float = 180) -> dg.DagsterRun:
        """Wait for the (``after``+1)-th run of ``job`` to finish; return it."""

        def done() -> dg.DagsterRun | None:
            runs = list(reversed(self.runs(job)))  # oldest first
            if len(runs) > after and runs[after].status in FINISHED:
                return runs[after]
            return None

        return self.wait_for(f"run {after + 1} of {job}", done, timeout)  # type: ignore[return-value]

    def tail(self, lines: int = 60) -> str:
        """The end of the daemon's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def fresh_home(tmp: Path) -> tuple[Path, Path, dg.DagsterInstance]:
    """A new Dagster home (the project's ``dagster.yaml``) and a workspace of SyncFlow's code.

    The instance's storage is created here, before any daemon or webserver
    starts: two processes creating the same SQLite schemas at once can fail one
    of them. Returns the home, the workspace file and the instance.
    """
    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    workspace = tmp / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: syncflow_dagster.definitions\n"
        f"      working_directory: {PROJECT_DIR}\n"
    )
    instance = dg.DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)
    instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.RUN_SUCCESS), limit=1
    )
    instance.all_instigator_state()
    return home, workspace, instance


@contextmanager
def local_deployment(tmp: Path, env: Mapping[str, str]) -> Iterator[LocalDeployment]:
    """A fresh Dagster home over SyncFlow's code location, with ``dagster-daemon run``."""
    home, workspace, instance = fresh_home(tmp)
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    log = tmp / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)],
            env=full_env,
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield LocalDeployment(home, workspace, full_env, instance, daemon, log)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        instance.dispose()
