"""`syncflow failed list|show|retry|resolve|discard` over PostgreSQL, APISmith and ScheduleHub."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from syncflow_dagster.testing.schedulehub import running_schedulehub

from .conftest import HUB_TOKEN, CliEnv


def history(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["action"], a["reason"]) for a in json.loads(row["actions"] or "[]")]


@pytest.fixture
def letters(cli_env: CliEnv) -> dict[str, list[int]]:
    """Two items a wrong rule dead-lettered, and a work order the hub did not take (transient)."""
    cli_env.sync("items", cli_env.strict)
    items = cli_env.store.list_failed("items")["id"].to_list()
    order = cli_env.fetched("work_orders").row(0, named=True)
    orders = cli_env.write_letters("work_orders", [cli_env.letter("work_orders", order)])
    return {"items": items, "work_orders": orders}


def test_list_with_filters_and_json(cli_env: CliEnv, letters: dict[str, list[int]]) -> None:
    text = cli_env.run("failed", "list")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "ENTITY", "STAGE", "CODE"]
    assert len(lines) == 4
    assert "hub_unavailable" in lines[3] and "transient" in lines[3]

    every = cli_env.run("failed", "list", "--json").json()
    assert [r["id"] for r in every] == letters["items"] + letters["work_orders"]
    assert set(every[0]) >= {"raw", "normalized", "mapped", "actions", "error_kind", "attempts"}
    assert every[0]["actions"] == [] and every[0]["status"] == "open"

    def ids(*argv: str) -> list[int]:
        printed = cli_env.run("failed", "list", "--json", *argv)
        assert printed.code == 0, printed.err
        return [r["id"] for r in printed.json()]

    assert ids("--entity", "items") == letters["items"]
    assert ids("--stage", "validate") == letters["items"]
    assert ids("--kind", "transient") == letters["work_orders"]
    assert ids("--code", "hub_unavailable", "--entity", "items") == []
    batch = cli_env.store.list_failed("items")["batch_id"][0]
    assert ids("--batch", str(batch)) == letters["items"]
    assert ids("--since", "1h") == [*letters["items"], *letters["work_orders"]]
    assert ids("--since", "2999-01-01") == []
    assert ids("--limit", "1") == letters["items"][:1]
    assert (
        ids("--after-id", str(letters["items"][0])) == letters["items"][1:] + letters["work_orders"]
    )
    assert ids("--status", "resolved") == []
    assert len(ids("--status", "any")) == 3
    assert "no dead letters match" in cli_env.run("failed", "list", "--entity", "nope").out
    bad_since = cli_env.run("failed", "list", "--since", "yesterday-ish")
    assert bad_since.code == 2 and "neither an age" in bad_since.err


def test_show_prints_every_form_and_the_history(
    cli_env: CliEnv, letters: dict[str, list[int]]
) -> None:
    letter_id = letters["items"][0]
    printed = cli_env.run("failed", "show", str(letter_id))
    assert printed.code == 0
    out = printed.out
    assert out.startswith(f"dead letter {letter_id} of items — open")
    for heading in ("raw:", "normalized:", "mapped:", "actions:"):
        assert f"\n{heading}\n" in out
    assert '"ITEM_TYPE": "PHANTOM"' in out  # raw and normalized, pretty printed
    assert "stage:" in out and "validate" in out
    shown = cli_env.run("failed", "show", str(letter_id), "--json").json()
    row = cli_env.store.get_failed(letter_id)
    assert row is not None
    assert shown["raw"] == row["raw"] and shown["normalized"] == row["normalized"]
    assert shown["id"] == letter_id and shown["actions"] == []
    missing = cli_env.run("failed", "show", "999999")
    assert missing.code == 1 and "no dead letter 999999" in missing.err


def test_resolve_and_discard_record_the_reason(
    cli_env: CliEnv, letters: dict[str, list[int]]
) -> None:
    first, second = letters["items"]
    refused = cli_env.run("failed", "resolve", "--reason", "x")
    assert refused.code == 2 and "refusing to act on everything" in refused.err

    done = cli_env.run(
        "failed", "resolve", str(first), "--reason", "fixed the item type in the ERP"
    )
    assert done.code == 0 and f"resolve: 1 dead letter changed: {first}" in done.out
    row = cli_env.store.get_failed(first)
    assert row is not None
    assert (row["status"], row["resolution"]) == ("resolved", "fixed the item type in the ERP")
    assert row["resolved_at"] is not None
    assert history(row) == [("resolve", "fixed the item type in the ERP")]

    by_filter = cli_env.run(
        "failed",
        "discard",
        "--entity",
        "items",
        "--stage",
        "validate",
        "--reason",
        "test data",
        "--json",
    ).json()
    assert by_filter == {
        "action": "discard",
        "changed": [second],
        "skipped": [],
        "missing": [],
        "more": False,
    }
    row = cli_env.store.get_failed(second)
    assert row is not None and row["status"] == "discarded"
    assert history(row) == [("discard", "test data")]

    again = cli_env.run("failed", "discard", str(first), "999999", "--reason", "again")
    assert again.code == 1
    assert f"left dead letter {first} as it is: it is resolved" in again.out
    assert "no dead letter 999999" in again.out
    assert cli_env.store.get_failed(first)["status"] == "resolved"  # type: ignore[index]
    assert cli_env.run("failed", "discard", str(first)).code == 2  # --reason is required


def test_retry_delivers_letters_whose_rule_was_fixed(
    cli_env: CliEnv, letters: dict[str, list[int]]
) -> None:
    printed = cli_env.run(
        "failed", "retry", "--entity", "items", "--reason", "PHANTOM allowed again", "--json"
    )
    assert printed.code == 0, printed.out
    out = printed.json()
    assert out["ok"] and out["counts"] == {"delivered": 2}
    [batch] = out["batches"]
    assert batch["entity"] == "items" and batch["metrics"]["inserted"] == 2
    assert cli_env.store.get_batch(batch["batch_id"])["status"] == "succeeded"
    assert cli_env.hub.store.count("items") == 20
    for letter_id in letters["items"]:
        row = cli_env.store.get_failed(letter_id)
        assert row is not None and row["status"] == "resolved"
        assert row["resolution"] == f"retried: delivered in batch {batch['batch_id']}"
        assert (
            history(row)
            == [
                ("retry", "PHANTOM allowed again"),
                ("retried", f"delivered in batch {batch['batch_id']}"),
            ]
            or history(row)[1][1] == row["resolution"]
        )
    # The transient work order was not selected by the filter.
    assert cli_env.store.get_failed(letters["work_orders"][0])["status"] == "open"  # type: ignore[index]

    text = cli_env.run("failed", "retry", str(letters["work_orders"][0]))
    assert text.code == 0
    assert "delivered" in text.out and "1 delivered" in text.out.splitlines()[-1]


def test_retry_of_a_letter_that_fails_again(
    cli_env: CliEnv, letters: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTITIES_DIR", str(cli_env.strict_dir))  # the rule is still wrong
    first = letters["items"][0]
    printed = cli_env.run("failed", "retry", str(first), "--reason", "one more try")
    assert printed.code == 0
    assert "failed_again" in printed.out and "1 failed again" in printed.out
    old = cli_env.store.get_failed(first)
    assert old is not None and old["status"] == "resolved"
    assert old["resolution"].startswith("superseded: dead-lettered again by retry batch")
    [new] = (
        cli_env.store.list_failed("items", stage="validate")
        .filter(__import__("polars").col("id") != letters["items"][1])
        .iter_rows(named=True)
    )
    assert (new["attempts"], new["error_kind"], new["next_retry_at"]) == (1, "permanent", None)
    assert [a for a, _ in history(new)] == ["retry", "retried"]

    # A transient letter while the hub is down: attempts + 1, due again after the backoff.
    order = letters["work_orders"][0]
    with running_schedulehub(token=HUB_TOKEN, faults="503=1") as down:
        monkeypatch.setenv("SCHEDULEHUB_URL", down.url)
        before = datetime.now(UTC)
        printed = cli_env.run("failed", "retry", "--kind", "transient", "--json")
    assert printed.code == 1
    out = printed.json()
    assert not out["ok"] and out["counts"] == {"retry_failed": 1}
    assert out["batches"][0]["error_kind"] == "transient"
    row = cli_env.store.get_failed(order)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("open", 1)
    assert row["next_retry_at"] is not None and row["next_retry_at"] > before
    assert [a for a, _ in history(row)] == ["retry", "retry_failed"]
