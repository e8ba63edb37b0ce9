"""A throwaway PostgreSQL cluster started from the machine's own binaries.

Used by the test suite and the benchmark, so that nothing needs a server
started by hand. When running as root (CI containers), the cluster runs as the
``postgres`` system user, because PostgreSQL refuses to run as root.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_bindir() -> Path:
    """Locate the directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    env = os.environ.get("SYNCFLOW_PG_BINDIR")
    candidates: list[Path] = [Path(env)] if env else []
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian "
        "'postgresql' package or set SYNCFLOW_PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throwaway cluster; ``url`` is a SQLAlchemy URL for psycopg 3."""

    datadir: Path
    bindir: Path
    port: int
    user: str
    run_as: str | None

    @property
    def host(self) -> str:
        """Where the cluster listens (loopback)."""
        return "127.0.0.1"

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL of database ``dbname``."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string of database ``dbname``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create a fresh database and return its SQLAlchemy URL."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once (the data is thrown away anyway)."""
        _run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
            self.run_as,
            check=False,
        )


def _run(
    cmd: list[str], run_as: str | None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    if run_as:
        cmd = ["runuser", "-u", run_as, "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@contextlib.contextmanager
def postgres_cluster(durable: bool = False) -> Iterator[PostgresCluster]:
    """Start a cluster in a temporary directory; stop and remove it on exit.

    Args:
        durable: keep PostgreSQL's default durability (fsync, synchronous commit).
            Tests turn it off for speed; the benchmark keeps it on so that its
            figures hold for a real server.
    """
    bindir = find_bindir()
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            pwd.getpwnam(run_as)
        except KeyError as exc:
            raise PostgresUnavailableError("running as root and no 'postgres' user exists") from exc
    tmp = Path(tempfile.mkdtemp(prefix="syncflow-pg-"))
    datadir = tmp / "data"
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    user = "syncflow"
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        run_as,
    )
    port = free_port()
    opts = [
        f"-p {port}",
        f"-k {tmp}",
        "-c listen_addresses=127.0.0.1",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
        "-c max_wal_size=4GB",
        "-c checkpoint_timeout=30min",
    ]
    if not durable:
        opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    _run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(tmp / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(opts),
            "start",
        ],
        run_as,
    )
    cluster = PostgresCluster(datadir=datadir, bindir=bindir, port=port, user=user, run_as=run_as)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(cluster.dsn(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
