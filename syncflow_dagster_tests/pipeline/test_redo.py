"""Retrying dead letters: their raw form goes through the stages again and lands in one bucket.

Real PostgreSQL, real APISmith and ScheduleHub emulators over HTTP; no Dagster.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from syncflow_dagster.config.loader import EntityCatalog, load_catalog
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.paths import ENTITIES_DIR
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.delta import delta_step
from syncflow_dagster.pipeline.fetch import fetch_step, source_columns
from syncflow_dagster.pipeline.identity import identity_step
from syncflow_dagster.pipeline.ingest import ingest_step
from syncflow_dagster.pipeline.keys import key_hashes
from syncflow_dagster.pipeline.lifecycle import RunInfo
from syncflow_dagster.pipeline.redo import RedoOutcome, raw_frame, read_raw, redo_failed
from syncflow_dagster.pipeline.resolve import resolve_step
from syncflow_dagster.pipeline.track import track_step
from syncflow_dagster.pipeline.transform import (
    check_against_hub,
    map_step,
    normalize_step,
    validate_step,
)
from syncflow_dagster.stages.track import conservation_problems
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith
from syncflow_dagster.testing.schedulehub import RunningScheduleHub, running_schedulehub
from syncflow_dagster_tests.orchestration.conftest import edited_entities

TZ = "Europe/Berlin"
SPEC = DatasetSpec(seed=4, work_orders=40, bad_fraction=0)
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)


def no_phantoms(raw: dict[str, Any]) -> None:
    """A rule someone got wrong: PHANTOM items are valid, but this says they are not."""
    for rule in raw["rules"]:
        if rule["column"] == "ITEM_TYPE":
            rule["allowed"] = ["MAKE", "BUY"]


@dataclass
class Env:
    api: ApiSmithHandle
    hub: RunningScheduleHub
    source: ApiSmithClient
    client: ScheduleHubClient
    store: StateStore
    catalog: EntityCatalog
    strict: EntityCatalog

    def sync(self, entity: str, catalog: EntityCatalog | None = None) -> int:
        """A full sync of ``entity`` through the nine steps; its batch id."""
        catalog = catalog or self.catalog
        required = check_against_hub(catalog, entity, self.client.entities())
        run = RunInfo(f"sync-{entity}-{datetime.now(UTC).timestamp()}")
        s = fetch_step(catalog, entity, self.source, self.store, run, "full", TZ)
        s = validate_step(normalize_step(s, catalog, TZ), catalog, TZ)
        s = identity_step(map_step(s, catalog, TZ, required), catalog)
        s = resolve_step(delta_step(s, self.store), catalog, self.store)
        s = ingest_step(s, catalog, self.client, self.store, 100, TZ)
        return track_step(s, catalog, self.store, TZ).batch_id

    def redo(
        self,
        ids: list[int],
        catalog: EntityCatalog | None = None,
        client: ScheduleHubClient | None = None,
        backoff: Backoff | None = None,
        reason: str = "fixed",
    ) -> RedoOutcome:
        return redo_failed(
            catalog or self.catalog,
            ids,
            client or self.client,
            self.store,
            RunInfo("redo-run"),
            TZ,
            100,
            source=self.source,
            backoff=backoff,
            reason=reason,
        )

    def fetched(self, entity: str) -> pl.DataFrame:
        """The entity's records as the fetch reads them (text), with ``_row`` and ``bk_hash``."""
        cfg = self.catalog[entity]
        raw = self.source.fetch(cfg.source.entity, cfg.read_columns).frame.with_row_index("_row")
        types = source_columns(self.catalog, entity, self.source)
        return raw.join(key_hashes(raw, cfg, types, TZ), on="_row")

    def write_letters(self, entity: str, letters: list[dict[str, Any]]) -> list[int]:
        """Dead letters written as a run would write them; their ids."""
        batch = self.store.start_batch(entity, f"old-{entity}", "incremental")
        self.store.finish_batch(batch, "succeeded")
        self.store.add_failed(batch, entity, pl.DataFrame(letters))
        return self.store.list_failed(entity, batch_id=batch)["id"].to_list()

    def letter(self, entity: str, row: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A letter of a fetched record (its text values as the raw form)."""
        cfg = self.catalog[entity]
        raw = {c: row[c] for c in cfg.read_columns}
        return {
            "bk_hash": row["bk_hash"],
            "source_key": json.dumps({k: row[k] for k in cfg.source.key}),
            "rowversion": int(row[cfg.source.rowversion or ""]),
            "stage": "ingest",
            "code": "hub_unavailable",
            "detail": "ScheduleHub did not answer",
            "raw": json.dumps(raw),
            "error_kind": "transient",
            "next_retry_at": datetime.now(UTC) - timedelta(minutes=1),
            **fields,
        }

    def letter_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        rows = self.store.list_failed(status=None, ids=ids, limit=None)
        return {r["id"]: r for r in rows.iter_rows(named=True)}


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> Iterator[Env]:
    strict = load_catalog(edited_entities(tmp_path, "items", no_phantoms))
    with (
        running_apismith(SPEC) as api,
        running_schedulehub() as hub,
        ApiSmithClient(api.url, api.token, FAST) as source,
        ScheduleHubClient(hub.url, hub.token, FAST) as client,
        StateStore(pg_url, pool_size=4) as store,
    ):
        store.migrate()
        yield Env(api, hub, source, client, store, load_catalog(ENTITIES_DIR), strict)


def actions(row: dict[str, Any]) -> list[dict[str, str]]:
    return json.loads(row["actions"] or "[]")


def check_batch(store: StateStore, batch_id: int | None) -> dict[str, Any]:
    assert batch_id is not None
    batch = store.get_batch(batch_id)
    assert batch["mode"] == "retry"
    assert batch["status"] == "succeeded", batch["error"]
    assert conservation_problems(batch, batch["delete_candidates"]) == []
    return batch


def test_letters_of_a_rule_since_fixed_are_delivered_and_resolved(env: Env) -> None:
    env.sync("items", env.strict)
    letters = env.store.list_failed("items")
    assert letters.height == 2 and set(letters["stage"]) == {"validate"}
    ids = letters["id"].to_list()

    out = env.redo(ids, reason="PHANTOM is a valid item type (rule fixed)")

    assert out.ok and out.counts() == {"delivered": 2}
    [entity] = out.batches
    batch = check_batch(env.store, entity.batch_id)
    assert (batch["fetched"], batch["inserted"], batch["dead_lettered"]) == (2, 2, 0)
    assert env.hub.store.count("items") == 20
    assert env.store.count_state("items") == 20
    for row in env.letter_rows(ids).values():
        assert row["status"] == "resolved"
        assert row["resolution"] == f"retried: delivered in batch {entity.batch_id}"
        assert row["resolved_at"] is not None
        history = actions(row)
        assert [a["action"] for a in history] == ["retry", "retried"]
        assert history[0]["reason"] == "PHANTOM is a valid item type (rule fixed)"
        assert history[1]["reason"] == row["resolution"]
        assert all(set(a) == {"at", "action", "reason"} for a in history)
    assert env.store.count_failed("items") == 0


def test_a_letter_that_fails_again_is_superseded_and_counts_its_attempts(env: Env) -> None:
    env.sync("items", env.strict)
    first = env.store.list_failed("items")["id"].to_list()

    out = env.redo(first, catalog=env.strict, reason="try again")

    assert out.ok and out.counts() == {"failed_again": 2}
    batch = check_batch(env.store, out.batches[0].batch_id)
    assert (batch["fetched"], batch["validation_failed"], batch["dead_lettered"]) == (2, 2, 2)
    old = env.letter_rows(first)
    assert {r["status"] for r in old.values()} == {"resolved"}
    assert {r["resolution"] for r in old.values()} == {
        f"superseded: dead-lettered again by retry batch {batch['id']}"
    }
    new = env.store.list_failed("items")
    assert new.height == 2 and set(new["batch_id"]) == {batch["id"]}
    assert new["attempts"].to_list() == [1, 1]
    assert set(new["error_kind"]) == {"permanent"}  # a rule: no automatic retry
    assert new["next_retry_at"].null_count() == 2
    for row in new.iter_rows(named=True):
        assert [a["action"] for a in actions(row)] == ["retry", "retried"]
        assert "supersedes letter" in actions(row)[1]["reason"]

    again = env.redo(new["id"].to_list(), catalog=env.strict)
    assert again.counts() == {"failed_again": 2}
    assert env.store.list_failed("items")["attempts"].to_list() == [2, 2]


def test_a_transient_letter_is_delivered_once_the_hub_answers(env: Env) -> None:
    row = env.fetched("items").row(3, named=True)
    [letter_id] = env.write_letters("items", [env.letter("items", row)])
    due = env.store.due_failed(datetime.now(UTC), kind="transient")
    assert due["id"].to_list() == [letter_id]
    assert env.store.due_failed(datetime.now(UTC), kind="permanent").is_empty()

    out = env.redo(due["id"].to_list())

    assert out.counts() == {"delivered": 1}
    check_batch(env.store, out.batches[0].batch_id)
    assert env.hub.store.get("items", row["bk_hash"]) is not None
    assert env.letter_rows([letter_id])[letter_id]["status"] == "resolved"
    assert env.store.due_failed(datetime.now(UTC), kind="transient").is_empty()


def test_a_transient_letter_whose_hub_is_still_down_is_bumped_with_backoff(env: Env) -> None:
    row = env.fetched("items").row(0, named=True)
    [letter_id] = env.write_letters("items", [env.letter("items", row, attempts=2)])
    before = datetime.now(UTC)
    with (
        running_schedulehub(faults="503=1") as down,
        ScheduleHubClient(down.url, down.token, FAST) as unreachable,
    ):
        out = env.redo([letter_id], client=unreachable, backoff=Backoff(60, 3600, 5))
        assert not out.ok and out.counts() == {"retry_failed": 1}
        [entity] = out.batches
        assert entity.error_kind == "transient"
        batch = env.store.get_batch(entity.batch_id or 0)
        assert (batch["mode"], batch["status"], batch["error_kind"]) == (
            "retry",
            "failed",
            "transient",
        )
        row_now = env.letter_rows([letter_id])[letter_id]
        assert (row_now["status"], row_now["attempts"]) == ("open", 3)
        # 60 s * 2^3, plus up to a quarter of jitter
        assert before + timedelta(seconds=480) <= row_now["next_retry_at"]
        assert row_now["next_retry_at"] <= datetime.now(UTC) + timedelta(seconds=600)
        assert [a["action"] for a in actions(row_now)] == ["retry", "retry_failed"]

        # The attempts are spent: no automatic retry any more, a person decides.
        spent = env.redo([letter_id], client=unreachable, backoff=Backoff(60, 3600, 4))
        assert spent.counts() == {"retry_failed": 1}
        row_now = env.letter_rows([letter_id])[letter_id]
        assert (row_now["attempts"], row_now["next_retry_at"]) == (4, None)
    assert env.store.get_lease("items") is None  # the lease went with the batch


def test_fetch_letters_are_read_again_from_their_line(env: Env) -> None:
    line = json.dumps(
        {
            "ITEM_NO": "ITM-900001",
            "DESCRIPTION": "Welle",
            "ITEM_TYPE": "MAKE",
            "UOM": "EA",
            "STD_COST": 12.5,  # a JSON number: read as its text, as the fetch does
            "LEAD_TIME_DAYS": 3,
            "ACTIVE_FLAG": "Y",
            "CREATED_DATE": "2024-01-02",
            "LAST_UPDATE_TS": "2024-01-02 10:00:00 +01:00",
            "ORA_ROWSCN": 77,
        }
    )
    cut = line[:40]
    ids = env.write_letters(
        "items",
        [
            {"stage": "fetch", "code": "unreadable_json", "detail": "was bad", "raw": line},
            {
                "stage": "fetch",
                "code": "truncated",
                "detail": "the line ends inside the record",
                "raw": cut,
                "source_key": '{"ITEM_NO": "ITM-900002"}',
            },
        ],
    )

    out = env.redo(ids)

    assert {o.id: o.outcome for o in out.letters} == {
        ids[0]: "delivered",
        ids[1]: "failed_again",
    }, out.letters
    batch = check_batch(env.store, out.batches[0].batch_id)
    assert (batch["fetched"], batch["fetch_failed"], batch["inserted"]) == (2, 1, 1)
    [again] = env.store.list_failed("items").iter_rows(named=True)
    assert (again["stage"], again["code"], again["raw"]) == ("fetch", "truncated", cut)
    assert again["attempts"] == 1
    [record] = [r for r in env.hub.store.records("items") if r["data"]["item_no"] == "ITM-900001"]
    assert record["data"]["standard_cost"] == 12.5


def test_parents_go_first_and_a_child_without_its_parent_waits(env: Env) -> None:
    orders = env.fetched("work_orders")
    items = env.fetched("items")
    first, second = orders.row(0, named=True), orders.row(1, named=True)
    parent = items.filter(pl.col("ITEM_NO") == first["ITEM_NO"]).row(0, named=True)
    assert second["ITEM_NO"] != first["ITEM_NO"]
    child_ids = env.write_letters(
        "work_orders", [env.letter("work_orders", first), env.letter("work_orders", second)]
    )
    [parent_id] = env.write_letters("items", [env.letter("items", parent)])

    out = env.redo([*child_ids, parent_id])

    assert [b.entity for b in out.batches] == ["items", "work_orders"]
    outcomes = {o.id: o.outcome for o in out.letters}
    assert outcomes == {parent_id: "delivered", child_ids[0]: "delivered", child_ids[1]: "pending"}
    batch = check_batch(env.store, out.batches[1].batch_id)
    assert (batch["inserted"], batch["pending_children"]) == (1, 1)
    [waiting] = env.store.list_pending("work_orders").iter_rows(named=True)
    assert waiting["bk_hash"] == second["bk_hash"]
    resolution = env.letter_rows([child_ids[1]])[child_ids[1]]["resolution"]
    assert resolution == f"retried: pending in batch {batch['id']}"


def test_unchanged_obsolete_and_unretryable_letters(env: Env) -> None:
    env.sync("items")
    items = env.fetched("items")
    same, older, dup = (items.row(i, named=True) for i in range(3))
    rv = int(older["ORA_ROWSCN"])
    ids = env.write_letters(
        "items",
        [
            env.letter("items", same),  # the hub has it in this very version
            env.letter("items", {**older, "ORA_ROWSCN": str(rv - 1)}),  # older than the hub's
            env.letter("items", dup, rowversion=1, bk_hash=None),  # two letters, one record
            env.letter("items", dup, bk_hash=None),
            {"stage": "ingest", "code": "invalid_record", "mapped": "{}"},  # no raw form
        ],
    )
    closed = env.write_letters("items", [env.letter("items", same)])
    env.store.discard_failed(closed, "not needed")

    out = env.redo([*ids, *closed, 999_999])

    outcomes = {o.id: o.outcome for o in out.letters}
    assert outcomes == {
        ids[0]: "unchanged",
        ids[1]: "obsolete",
        ids[2]: "obsolete",
        ids[3]: "unchanged",
        ids[4]: "skipped",
        closed[0]: "skipped",
        999_999: "skipped",
    }
    batch = check_batch(env.store, out.batches[0].batch_id)
    assert (batch["fetched"], batch["unchanged"], batch["inserted"]) == (2, 2, 0)
    rows = env.letter_rows(ids)
    assert (
        rows[ids[1]]["resolution"] == f"obsolete: the hub has the record in rowversion {rv} already"
    )
    assert (
        rows[ids[2]]["resolution"] == f"obsolete: letter {ids[3]} holds a newer form of the record"
    )
    held = rows[ids[4]]
    assert (held["status"], held["next_retry_at"]) == ("open", None)
    assert [a["action"] for a in actions(held)] == ["hold"]
    assert env.letter_rows(closed)[closed[0]]["status"] == "discarded"


def test_read_raw_reads_what_the_fetch_reads() -> None:
    schema: dict[str, pl.DataType] = {"A": pl.String(), "B": pl.String()}
    assert read_raw('{"A": "x", "B": null}', schema).row(0) == ("x", None)  # type: ignore[union-attr]
    assert read_raw('{"A": 1.5, "C": 2}', schema).row(0) == ("1.5", None)  # type: ignore[union-attr]
    for bad in (None, '{"A": "x"', "[1, 2]", '"text"', "{}\n{}", '{"A": NaN}'):
        assert read_raw(bad, schema) is None, bad
    letters = pl.DataFrame(
        {
            "stage": ["fetch", "fetch", "validate"],
            "code": ["invalid_utf8", "unreadable_json", "range"],
            "raw": ['{"A": "\ufffd"}', '{"A": "ok"}', '{"A": "v", "B": "w"}'],
        }
    )
    records, unreadable = raw_frame(letters, ["A", "B"])
    assert records.rows() == [(1, "ok", None), (2, "v", "w")]
    assert unreadable["_row"].to_list() == [0]  # its bytes were replaced: not what the ERP holds
