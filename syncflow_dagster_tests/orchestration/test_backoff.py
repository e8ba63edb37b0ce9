"""Waiting children are retried on an exponential backoff and dead-lettered after the last attempt.

A fake clock drives the retries: a due child whose parent is still missing
counts an attempt and backs off (RETRY_DELAY_SECONDS · 2^attempts, with
jitter, capped); one not due yet is left alone; after the fifth failed
attempt it is dead-lettered (parent_missing, naming the parent) and stops
waiting; a child whose parent arrives goes at once, whatever its backoff.
"""

import random
from datetime import UTC, datetime, timedelta

import orjson

from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.lifecycle import RunInfo
from syncflow_dagster.pipeline.retry import retry_pending
from syncflow_dagster_tests.orchestration.conftest import MakeHarness, SyncHarness

SPEC = DatasetSpec(seed=33, work_orders=30, operations_per_order=0, bad_fraction=0.0)
T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def _retry(h: SyncHarness, now: datetime, backoff: Backoff, n: int) -> dict[str, object]:
    with (
        ApiSmithClient(h.api.url, h.api.token) as source,
        ScheduleHubClient(h.hub.url, h.hub.token) as hub,
    ):
        retry_pending(
            h.catalog,
            "work_orders",
            hub,
            h.store,
            RunInfo(f"retry-{n}"),
            100,
            "Europe/Berlin",
            source=source,
            backoff=backoff,
            now=now,
        )
    return h.last_batch("work_orders")


def _child(h: SyncHarness, wo: str) -> dict[str, object]:
    rows = h.store.list_pending("work_orders", status=None)
    return next(r for r in rows.iter_rows(named=True) if wo in r["payload"])


def test_backoff_curve_and_the_attempt_limit(make_harness: MakeHarness) -> None:
    h = make_harness(SPEC)
    h.sync_parent_first()
    data = h.api.dataset
    data.insert_rows(
        "work_orders",
        [
            {"WO_NO": "WO-BOF00001", "ITEM_NO": "ITM-NEVER1"},  # its item never comes
            {"WO_NO": "WO-BOF00002", "ITEM_NO": "ITM-LATER2"},  # its item comes late
        ],
    )
    assert h.run_entity("work_orders").success
    assert h.store.count_pending("work_orders") == 2

    backoff = Backoff(base_seconds=60, cap_seconds=3600, max_attempts=5, rng=random.Random(7))
    now, n = T0, 0
    delays = []
    while _child(h, "WO-BOF00001")["status"] == "waiting":
        n += 1
        before = _child(h, "WO-BOF00001")
        # Not due yet: a retry a second before leaves it alone.
        if before["attempts"]:
            _retry(h, before["next_retry_at"] - timedelta(seconds=1), backoff, n)
            assert _child(h, "WO-BOF00001")["attempts"] == before["attempts"]
        now = max(now, before["next_retry_at"] or now)
        _retry(h, now, backoff, n)
        after = _child(h, "WO-BOF00001")
        if after["status"] == "waiting":
            assert after["attempts"] == before["attempts"] + 1
            delays.append((after["next_retry_at"] - now).total_seconds())
        assert n < 10
    assert n == 5  # five failed attempts, then it stopped waiting
    # 60 · 2^k seconds with up to 25 % jitter, capped at the hour.
    for k, delay in enumerate(delays, start=1):
        assert 60 * 2**k <= delay <= min(60 * 2**k * 1.25, 3600), (k, delay)
    given_up = _child(h, "WO-BOF00001")
    assert given_up["status"] == "dead_lettered"
    [letter] = h.store.list_failed("work_orders", code="parent_missing").iter_rows(named=True)
    assert letter["stage"] == "retry" and "items" in letter["detail"]
    assert "gave up after 5 attempts" in letter["detail"]
    assert h.last_batch("work_orders")["expired_children"] == 1

    # The other child's item arrives: it goes at once, though its backoff has not elapsed.
    other = _child(h, "WO-BOF00002")
    assert other["status"] == "waiting" and other["next_retry_at"] > now
    data.insert_rows("items", [{"ITEM_NO": "ITM-LATER2"}])
    assert h.run_entity("items").success
    released = _retry(h, now, backoff, 99)
    assert (released["resolved_children"], released["inserted"]) == (1, 1)
    assert _child(h, "WO-BOF00002")["status"] == "released"
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_child_seen_again_keeps_one_waiting_row_with_its_latest_version(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(SPEC)
    h.sync_parent_first()
    data = h.api.dataset
    data.insert_rows("work_orders", [{"WO_NO": "WO-ONE00001", "ITEM_NO": "ITM-ONE001"}])
    for i in range(4):  # changed in the ERP and synced again, full or incremental
        data.update_keys("work_orders", [["WO-ONE00001"]], {"PRIORITY": i + 1})
        assert h.run_entity("work_orders", "full" if i % 2 else "incremental").success
    rows = h.store.list_pending("work_orders", status=None)
    assert rows.height == 1  # no junk rows
    [row] = rows.iter_rows(named=True)
    assert row["status"] == "waiting" and row["attempts"] == 0
    assert orjson.loads(row["payload"])["data"]["priority"] == 4
