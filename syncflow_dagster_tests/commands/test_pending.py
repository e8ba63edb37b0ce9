"""`syncflow pending list|retry|drop` over real PostgreSQL."""

import json
from datetime import UTC, datetime

import pytest

from .conftest import CliEnv


@pytest.fixture
def waiting(cli_env: CliEnv) -> list[int]:
    """Work orders synced before any item: every one waits for its item."""
    cli_env.sync("work_orders")
    ids = cli_env.store.list_pending("work_orders", limit=None)["id"].to_list()
    assert len(ids) == 40
    return ids


def test_list_with_filters_and_json(cli_env: CliEnv, waiting: list[int]) -> None:
    text = cli_env.run("pending", "list", "--limit", "5")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "ENTITY", "BK_HASH", "STATUS"]
    assert len(lines) == 7 and f"--after-id {waiting[4]}" in lines[-1]
    assert "work_orders" in lines[1] and "items" in lines[1]  # what it waits for

    rows = cli_env.run("pending", "list", "--json", "--limit", "100").json()
    assert [r["id"] for r in rows] == waiting
    assert rows[0]["status"] == "waiting" and rows[0]["actions"] == []
    assert json.loads(rows[0]["waiting_for"])[0]["entity"] == "items"
    batch = rows[0]["batch_id"]

    def ids(*argv: str) -> list[int]:
        printed = cli_env.run("pending", "list", "--json", "--limit", "100", *argv)
        assert printed.code == 0, printed.err
        return [r["id"] for r in printed.json()]

    assert ids("--entity", "work_orders", "--batch", str(batch)) == waiting
    assert ids("--entity", "items") == []
    assert ids("--since", "2999-01-01T00:00:00") == []
    assert ids("--after-id", str(waiting[-2])) == waiting[-1:]
    assert ids("--status", "dropped") == []
    assert "no children match" in cli_env.run("pending", "list", "--entity", "items").out


def test_retry_makes_children_due_now_and_drop_stops_them(
    cli_env: CliEnv, waiting: list[int]
) -> None:
    refused = cli_env.run("pending", "retry")
    assert refused.code == 2 and "refusing to act on everything" in refused.err

    before = datetime.now(UTC)
    printed = cli_env.run(
        "pending", "retry", str(waiting[0]), str(waiting[1]), "--reason", "item fixed"
    )
    assert printed.code == 0 and "2 children changed" in printed.out
    assert "pending_children_sensor" in printed.out
    for child_id in waiting[:2]:
        row = cli_env.store.get_pending(child_id)
        assert row is not None and before <= row["next_retry_at"] <= datetime.now(UTC)
        assert [(a["action"], a["reason"]) for a in json.loads(row["actions"])] == [
            ("retry", "item fixed")
        ]

    dropped = cli_env.run(
        "pending",
        "drop",
        "--entity",
        "work_orders",
        "--limit",
        "3",
        "--reason",
        "orders cancelled",
        "--json",
    ).json()
    assert dropped["changed"] == waiting[:3] and dropped["more"] is True
    assert cli_env.store.count_pending("work_orders") == 37
    row = cli_env.store.get_pending(waiting[0])
    assert row is not None and row["status"] == "dropped"
    assert [a["action"] for a in json.loads(row["actions"])] == ["retry", "drop"]

    again = cli_env.run("pending", "drop", str(waiting[0]), "--reason", "again")
    assert again.code == 1 and "it is dropped" in again.out
    assert cli_env.run("pending", "drop", str(waiting[5])).code == 2  # --reason is required
    assert (
        cli_env.run("pending", "list", "--status", "dropped", "--json").json()[0]["id"]
        == waiting[0]
    )
