"""A sandbox for running the README's commands as a user would: their own DATA_DIR and ports.

``sandbox_env(tmp)`` is the environment of a fresh clone's user with nothing configured,
but with DATA_DIR in ``tmp`` and the emulators, the Dagster UI and the operations API on
free loopback ports, so the test runs next to other tests (and a developer's own local
world) without touching them.
"""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from syncflow_dagster.emulators.common.serving import free_port
from syncflow_dagster.paths import PROJECT_DIR

# Settings a developer's shell (or `make test`) may carry that would point the sandbox
# at another world: the sandbox decides them itself.
FOREIGN = (
    "DAGSTER_HOME",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PASSWORD",
    "API_READ_TOKENS",
    "API_OPERATOR_TOKENS",
    "API_JWT_SECRET",
    "PROMETHEUS_MULTIPROC_DIR",
    "DAGSTER_WEBSERVER_URL",
    "ENTITIES_DIR",
)


def sandbox_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of the sandbox (``extra`` settings on top)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in FOREIGN}
    env.update(
        DATA_DIR=str(tmp / "data"),
        APISMITH_URL=f"http://127.0.0.1:{free_port()}",
        SCHEDULEHUB_URL=f"http://127.0.0.1:{free_port()}",
        API_PORT=str(free_port()),
        UI_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def syncflow(
    env: Mapping[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``uv run syncflow ARGS`` as the user types it (this environment's console script)."""
    return run([str(Path(sys.executable).with_name("syncflow")), *args], env, timeout)


def run(
    command: Sequence[str], env: Mapping[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A command in the project directory, its output captured."""
    return subprocess.run(
        list(command),
        cwd=PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
