"""The local world: what ``make demo`` builds and ``make ui`` serves, kept under DATA_DIR.

=================  ==========================================================
``erp.zip``        the APISmith emulator's ERP (``ErpDataset.save``): the demo's
                   last round plus every change made since through the admin API
``schedulehub.db`` the ScheduleHub emulator's records
``syncflow.db``    the sync state (the embedded default; DATABASE_URL or
                   POSTGRES_* point it elsewhere)
``dagster/``       the Dagster instance (unless DAGSTER_HOME says otherwise)
``logs/``          the output of the world's processes
``run/``           the process ids of its emulators (``syncflow emulators stop``)
``api-token``      the operations API's operator token, when none is configured
=================  ==========================================================

The emulators listen where the settings point SyncFlow (APISMITH_URL and
SCHEDULEHUB_URL, on loopback; 8007 and 5180 by default), so runs launched from
the UI, by the daemon or by the demo all reach the same world.
:func:`supervise` runs the world's processes in the foreground until Ctrl-C.
"""

import contextlib
import ctypes
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx

from syncflow_dagster.paths import PROJECT_DIR, SCHEDULEHUB_SCHEMAS
from syncflow_dagster.settings import Settings

WORKSPACE = PROJECT_DIR / "workspace.yaml"
EMULATORS = ("apismith", "schedulehub")
TITLES = {
    "apismith": "APISmith emulator",
    "schedulehub": "ScheduleHub emulator",
    "webserver": "Dagster UI",
    "daemon": "Dagster daemon",
    "api": "operations API",
}


class WorldError(RuntimeError):
    """The local world cannot do what was asked; the message says why and what to do."""


def _bin(name: str) -> str:
    """A console script of this environment (dagster-webserver, dagster-daemon, ...)."""
    return str(Path(sys.executable).with_name(name))


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _loopback(url: str, setting: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local or parts.scheme != "http":
        raise WorldError(
            f"{setting} is {url}: the local world serves its emulators on loopback "
            f"(http://127.0.0.1:PORT); unset {setting} (or point it at 127.0.0.1) for the "
            "local world"
        )
    return host, parts.port or 80


@dataclass(frozen=True)
class LocalWorld:
    """Where the local world lives and where its emulators listen."""

    settings: Settings
    data_dir: Path
    dagster_home: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> "LocalWorld":
        """The world of these settings (DATA_DIR; DAGSTER_HOME, default DATA_DIR/dagster)."""
        data = settings.data_dir.resolve()
        home_env = os.environ.get("DAGSTER_HOME")
        home = Path(home_env).resolve() if home_env else data / "dagster"
        return cls(settings, data, home)

    @property
    def erp(self) -> Path:
        """The saved ERP dataset."""
        return self.data_dir / "erp.zip"

    @property
    def hub_db(self) -> Path:
        """The hub emulator's SQLite file."""
        return self.data_dir / "schedulehub.db"

    @property
    def logs(self) -> Path:
        """The output of the world's processes."""
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Process ids of the running emulators."""
        return self.data_dir / "run"

    @property
    def api_token_file(self) -> Path:
        """The generated operator token of the operations API."""
        return self.data_dir / "api-token"

    def endpoint(self, emulator: str) -> tuple[str, int]:
        """Host and port the emulator serves on (from APISMITH_URL / SCHEDULEHUB_URL)."""
        if emulator == "apismith":
            return _loopback(self.settings.apismith_url, "APISMITH_URL")
        return _loopback(self.settings.schedulehub_url, "SCHEDULEHUB_URL")

    def busy(self, ports: Mapping[str, tuple[str, int]]) -> list[str]:
        """Which of ``ports`` (what -> host, port) something listens on already."""
        return [
            f"{what} port {port}" for what, (host, port) in ports.items() if port_in_use(host, port)
        ]

    def env(self) -> dict[str, str]:
        """What every process of the world needs in its environment."""
        return {"DAGSTER_HOME": str(self.dagster_home), "DATA_DIR": str(self.data_dir)}

    def publish(self) -> None:
        """Put :meth:`env` into this process's environment (for the processes it starts)."""
        os.environ.update(self.env())

    def instance(self) -> dg.DagsterInstance:
        """The world's Dagster instance, its storage created (before any other process does)."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        config = self.dagster_home / "dagster.yaml"
        if not config.exists() and not config.is_symlink():
            config.symlink_to(PROJECT_DIR / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(str(self.dagster_home))
        instance.get_runs(limit=1)
        instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.RUN_SUCCESS), limit=1
        )
        instance.all_instigator_state()
        return instance

    def owns_instance(self) -> bool:
        """Whether the Dagster instance is the world's own (inside DATA_DIR), so reset clears it."""
        return self.dagster_home.is_relative_to(self.data_dir)

    def reset(self) -> None:
        """Remove the ERP, the hub, the embedded state, the world's runs and its logs."""
        files = [self.erp, self.api_token_file]
        for db in (self.hub_db, self._sqlite_state()):
            if db is not None:
                files += [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")]
        for path in files:
            path.unlink(missing_ok=True)
        for folder in (self.logs, self.run_dir):
            shutil.rmtree(folder, ignore_errors=True)
        if self.owns_instance() and self.dagster_home.exists():
            for entry in self.dagster_home.iterdir():
                if entry.name == "dagster.yaml":
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def _sqlite_state(self) -> Path | None:
        url = self.settings.state_db_url
        if url.get_backend_name() != "sqlite" or not url.database:
            return None
        return Path(url.database)

    def has_leftovers(self) -> bool:
        """A hub or state without the ERP they were synced from (a world from before erp.zip)."""
        state = self._sqlite_state()
        return not self.erp.exists() and (
            self.hub_db.exists() or (state is not None and state.exists())
        )

    def pidfile(self, name: str) -> Path:
        """Where the process id of the world's ``name`` process is kept."""
        return self.run_dir / f"{name}.pid"


# ------------------------------------------------------------------ the processes


@dataclass
class Child:
    """One process of the world."""

    name: str
    command: list[str]
    ready: Callable[[], bool]
    url: str
    essential: bool = True
    """Whether the world stops when it ends (the emulators under ``--ui`` are not)."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    reported: bool = False

    @property
    def title(self) -> str:
        """How the process is named to the user."""
        return TITLES.get(self.name, self.name)


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    return check


_LOADED = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"


def _webserver_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            answer = httpx.post(f"{url}/graphql", json={"query": _LOADED}, timeout=5)
            nodes = answer.json()["data"]["repositoriesOrError"].get("nodes", [])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return False
        return any(n["jobs"] for n in nodes)

    return check


def emulator_children(
    world: LocalWorld,
    *,
    rows: int,
    seed: int,
    operations_per_order: float,
    bad_fraction: float,
    faults: str = "",
    ports: Mapping[str, int] | None = None,
    essential: bool = True,
) -> list[Child]:
    """Both emulators over the world's ERP and hub (the ERP is generated when missing)."""
    ports = ports or {}
    a_host, a_port = world.endpoint("apismith")
    h_host, h_port = world.endpoint("schedulehub")
    a_port, h_port = ports.get("apismith") or a_port, ports.get("schedulehub") or h_port
    apismith_url, hub_url = f"http://{a_host}:{a_port}", f"http://{h_host}:{h_port}"
    module = [sys.executable, "-m"]
    return [
        Child(
            "apismith",
            [
                *module,
                "syncflow_dagster.emulators.apismith",
                *("--host", a_host, "--port", str(a_port)),
                *("--world", str(world.erp)),
                *("--rows", str(rows), "--seed", str(seed)),
                *("--operations-per-order", str(operations_per_order)),
                *("--bad-fraction", str(bad_fraction)),
                *("--erp-timezone", world.settings.erp_timezone),
                *("--faults", faults),
            ],
            _answers(f"{apismith_url}/api/v1/health"),
            apismith_url,
            essential,
        ),
        Child(
            "schedulehub",
            [
                *module,
                "syncflow_dagster.emulators.schedulehub",
                *("--host", h_host, "--port", str(h_port)),
                *("--db", str(world.hub_db), "--schemas", str(SCHEDULEHUB_SCHEMAS)),
                *(["--faults", faults] if faults else []),
            ],
            _answers(f"{hub_url}/api/v1/health"),
            hub_url,
            essential,
        ),
    ]


def dagster_children(ui_port: int, api_port: int) -> list[Child]:
    """The Dagster webserver and daemon over ``workspace.yaml``, and the operations API."""
    ui = f"http://127.0.0.1:{ui_port}"
    api = f"http://127.0.0.1:{api_port}"
    where = ("-h", "127.0.0.1", "-p", str(ui_port))
    return [
        Child(
            "webserver",
            [_bin("dagster-webserver"), "-w", str(WORKSPACE), *where],
            _webserver_ready(ui),
            ui,
        ),
        Child("daemon", [_bin("dagster-daemon"), "run", "-w", str(WORKSPACE)], lambda: True, ""),
        Child(
            "api",
            [sys.executable, "-m", "syncflow_dagster.cli", "api", "--port", str(api_port)],
            _answers(f"{api}/api/v1/health/live"),
            api,
        ),
    ]


def api_token_env(world: LocalWorld) -> tuple[dict[str, str], str | None]:
    """The API's token settings for the world: as configured, else a generated operator token.

    Returns the environment to add and, when a token was generated, where it is kept.
    """
    s = world.settings
    if s.api_read_tokens or s.api_operator_tokens or s.api_jwt_secret:
        return {}, None
    path = world.api_token_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return {"API_OPERATOR_TOKENS": f"local:{path.read_text().strip()}"}, str(path)


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the supervisor dies, however (Linux)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _start(child: Child, world: LocalWorld, env: Mapping[str, str]) -> None:
    world.logs.mkdir(parents=True, exist_ok=True)
    with (world.logs / f"{child.name}.log").open("ab") as out:
        # A session of its own: Ctrl-C in the terminal reaches the supervisor only,
        # which then stops every process in order; a supervisor killed outright
        # takes them along (no server is left orphaned on its port).
        child.process = subprocess.Popen(
            child.command,
            env={**os.environ, **env},
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
    if child.name in EMULATORS:
        world.run_dir.mkdir(parents=True, exist_ok=True)
        world.pidfile(child.name).write_text(f"{child.process.pid}\n")


def _stop(children: Sequence[Child], world: LocalWorld) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait(timeout=10)
    for child in children:
        if child.name in EMULATORS:
            _forget(world, child)


def _forget(world: LocalWorld, child: Child) -> None:
    path = world.pidfile(child.name)
    if child.process is not None and path.exists():
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text()) == child.process.pid:
                path.unlink()


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


class _StopRequestedError(Exception):
    """SIGTERM (or SIGHUP) asked the supervisor to stop."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _StopRequestedError


def supervise(
    world: LocalWorld,
    children: Sequence[Child],
    env: Mapping[str, str],
    on_ready: Callable[[], None],
    timeout: float = 300,
) -> int:
    """Start ``children`` in order, each once the one before answers; wait until Ctrl-C.

    An essential child that ends stops the world (exit 1, naming it and its log's
    end); another (the emulators under ``--ui``) is reported once and the rest
    stays up. Ctrl-C or SIGTERM stops every child and exits 0, without a traceback.
    """
    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGHUP)}
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the readiness checks
    status = 0
    try:
        for child in children:
            _start(child, world, env)
            _wait_ready(child, world, timeout)
        on_ready()
        while True:
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is None or child.reported:
                    continue
                child.reported = True
                log = world.logs / f"{child.name}.log"
                if child.essential and code == 0:  # asked to stop (syncflow emulators stop)
                    print(f"\n{child.title} stopped; stopping the rest.", flush=True)
                    return 0
                if child.essential:
                    print(
                        f"\n{child.title} ended (exit {code}); stopping the local world. "
                        f"The end of {log}:\n{_tail(log)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                _forget(world, child)
                print(
                    f"\n{child.title} at {child.url} stopped (exit {code}); the rest stays up. "
                    "`uv run syncflow emulators` serves the world's emulators again.",
                    flush=True,
                )
            time.sleep(0.5)
    except (KeyboardInterrupt, _StopRequestedError):
        print("\nstopping the local world ...", flush=True)
    except WorldError as exc:
        print(f"\n{exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        with contextlib.suppress(KeyboardInterrupt, _StopRequestedError):
            _stop(children, world)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _wait_ready(child: Child, world: LocalWorld, timeout: float) -> None:
    assert child.process is not None
    deadline = time.monotonic() + timeout
    while not child.ready():
        code = child.process.poll()
        log = world.logs / f"{child.name}.log"
        if code is not None:
            raise WorldError(
                f"{child.title} did not start (exit {code}). The end of {log}:\n{_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise WorldError(f"{child.title} did not answer within {timeout:g} s; see {log}")
        time.sleep(0.2)


# ------------------------------------------------------------------ stopping the emulators


def _is_emulator(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"syncflow_dagster.emulators" in command


def stop_emulators(world: LocalWorld, timeout: float = 30) -> list[str]:
    """SIGTERM the world's running emulators (by their pid files); what was stopped."""
    stopped = []
    for name in EMULATORS:
        path = world.pidfile(name)
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            continue
        if _is_emulator(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _is_emulator(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            stopped.append(f"{TITLES[name]} (pid {pid})")
        path.unlink(missing_ok=True)
    return stopped
