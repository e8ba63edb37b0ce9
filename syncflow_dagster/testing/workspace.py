"""Runs launched through the workspace, as the UI, a schedule or ``dagster job launch`` does.

``workspace_runs(instance, log)`` loads ``workspace.yaml`` (its code server's output,
and that of every run it starts, goes to ``log``) and yields a
:class:`WorkspaceRuns` that creates runs of the code location and hands them to the
instance's run launcher: each run is a process of its own, carries the
code-location tags, and so counts on the UI's partition, asset and run pages
exactly as a scheduled run does. No daemon is needed (the run queue is not used);
schedules and sensors do not tick.

The run is created as ``dagster job launch`` creates it (``dagster._cli.job._create_run``,
a private helper of Dagster's command line, pinned by the tests of the demo).
"""

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from syncflow_dagster.paths import PROJECT_DIR

WORKSPACE = PROJECT_DIR / "workspace.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Point this process's stdout and stderr (file descriptors 1 and 2) at ``log``.

    A child process started meanwhile keeps writing there for its whole life.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@dataclass
class WorkspaceRuns:
    """Launch runs of SyncFlow's code location and wait for them."""

    instance: dg.DagsterInstance
    context: Any  # dagster's WorkspaceProcessContext

    def launch(
        self,
        job: str,
        tags: Mapping[str, str] | None = None,
        run_config: Mapping[str, Any] | None = None,
        partition: str | None = None,
    ) -> str:
        """Create a run of ``job`` and hand it to the run launcher; its id.

        ``partition`` tags the run as the UI tags a run of a partition (its key and the
        job's partition set), so the job's partition page counts it.
        """
        from dagster._cli.job import _create_run  # noqa: PLC0415 - see the module docstring
        from dagster._cli.workspace.cli_target import (  # noqa: PLC0415
            get_code_location_from_workspace,
            get_remote_job_from_remote_repo,
            get_remote_repository_from_code_location,
        )

        workspace = self.context.create_request_context()
        location = get_code_location_from_workspace(workspace, None)
        repo = get_remote_repository_from_code_location(location, None)
        remote_job = get_remote_job_from_remote_repo(repo, job)
        all_tags = dict(tags or {})
        if partition is not None:
            [partition_set] = [s for s in repo.get_partition_sets() if s.job_name == job]
            all_tags["dagster/partition"] = partition
            all_tags["dagster/partition_set"] = partition_set.name
        run = _create_run(
            instance=self.instance,
            code_location=location,
            remote_repo=repo,
            remote_job=remote_job,
            run_config=dict(run_config or {}),
            tags=all_tags,
            op_selection=None,
            run_id=None,
        )
        self.instance.launch_run(run.run_id, workspace)
        return run.run_id

    def wait(self, run_id: str, timeout: float = 3600) -> dg.DagsterRun:
        """The run once it finished (SUCCESS, FAILURE or CANCELED).

        Raises:
            TimeoutError: it did not finish within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.instance.get_run_by_id(run_id)
            if run is not None and run.status in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish within {timeout:g} s")
            time.sleep(0.2)

    def failure(self, run_id: str) -> str:
        """Why a run failed: the first step failure's (or the run failure's) message."""
        kinds = (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE)
        for kind in kinds:
            for entry in self.instance.all_logs(run_id, of_type=kind):
                event = entry.dagster_event
                data = event.event_specific_data if event is not None else None
                error = getattr(data, "error", None)
                if error is not None:
                    return f"{error.cls_name}: {error.message.strip()}"
                if entry.user_message:
                    return entry.user_message
        return "no failure recorded"


@contextmanager
def workspace_runs(instance: dg.DagsterInstance, log: Path) -> Iterator[WorkspaceRuns]:
    """``workspace.yaml`` loaded over ``instance``; the code server's output goes to ``log``."""
    from dagster._core.workspace.context import WorkspaceProcessContext  # noqa: PLC0415
    from dagster._core.workspace.load_target import WorkspaceFileTarget  # noqa: PLC0415

    with output_to(log):
        context = WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)]))
    with context:
        errors = context.create_request_context().code_location_errors()
        if errors:
            raise RuntimeError(f"the code location does not load: {errors[0].message} (see {log})")
        yield WorkspaceRuns(instance, context)
