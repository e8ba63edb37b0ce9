"""`syncflow api` is a registered subcommand; a bad setting stops it with the variable named."""

import pytest

from syncflow_dagster.cli import build_parser, main
from syncflow_dagster.commands import api


def test_the_api_subcommand_is_registered() -> None:
    args = build_parser().parse_args(["api", "--host", "0.0.0.0", "--port", "9000"])
    assert args.handler is api.run
    assert (args.host, args.port) == ("0.0.0.0", 9000)


def test_a_bad_setting_stops_it_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_OPERATOR_TOKENS", "alice:short")
    assert main(["api"]) == 2
    err = capsys.readouterr().err
    assert "API_OPERATOR_TOKENS" in err and "alice:short" not in err
