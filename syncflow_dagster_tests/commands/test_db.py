"""`syncflow db upgrade` against a database that is not there: a clear message, no traceback."""

import pytest

from syncflow_dagster.cli import main


def test_an_unreachable_database_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://syncflow:Pa55-w0rd-xyz@127.0.0.1:9/syncflow")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the state database postgresql+psycopg://syncflow:***@127.0.0.1:9" in err
    assert "Connection refused" in err or "connection failed" in err
    assert "Pa55-w0rd-xyz" not in err and "Traceback" not in err
