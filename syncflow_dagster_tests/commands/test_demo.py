"""`syncflow demo`: what its help says, and what it refuses before it touches a world.

The demo itself — three rounds of real runs of the code location, a quiet console,
the world it leaves — is run end to end by ``syncflow_dagster_tests/walkthrough``.
"""

import socket
from pathlib import Path

import pytest

from syncflow_dagster.cli import main
from syncflow_dagster_tests.walkthrough.sandbox import sandbox_env, syncflow


def test_the_help_says_what_the_demo_does_and_every_option_has_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["demo", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "three rounds" in text and "twice" not in text
    assert "make ui" in text
    for option in ("--rows", "--seed", "--bad-fraction"):
        described = text.split(option, 2)[-1].split(" --", 1)[0]
        assert len(described.split()) > 4, f"{option} has no help: {described!r}"


def test_a_running_world_is_never_replaced_under_it(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path)
    (tmp_path / "data").mkdir()
    marker = tmp_path / "data" / "erp.zip"
    marker.write_bytes(b"the running world's ERP")
    port = int(env["SCHEDULEHUB_URL"].rsplit(":", 1)[1])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        done = syncflow(env, "demo", "--rows", "10", timeout=120)
    assert done.returncode == 2
    assert f"ScheduleHub (SCHEDULEHUB_URL) port {port} in use" in done.stderr
    assert "make ui" in done.stderr
    assert marker.read_bytes() == b"the running world's ERP"


def test_a_remote_erp_url_is_refused_naming_the_setting(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, APISMITH_URL="https://erp.example.com/apismith")
    done = syncflow(env, "demo", "--rows", "10", timeout=120)
    assert done.returncode == 2
    assert "APISMITH_URL is https://erp.example.com/apismith" in done.stderr
    assert not (tmp_path / "data" / "erp.zip").exists()


def test_a_postgresql_state_is_never_used_for_a_demo_world(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, DATABASE_URL="postgresql://syncflow:pw@db.example.com/syncflow")
    done = syncflow(env, "demo", "--rows", "10", timeout=120)
    assert done.returncode == 2
    assert "embedded SQLite state" in done.stderr and "DATABASE_URL" in done.stderr
    assert ":pw@" not in done.stderr + done.stdout
