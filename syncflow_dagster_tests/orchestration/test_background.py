"""Background sync of a big table: night by night, inside the window, within the budget.

A fake clock walks through the nights (19:00–07:00 Europe/Berlin, one of them
the night the clocks go back). Each night the sensor's decision launches a
run, which works in chunks and stops cleanly (paused) at the night's budget;
the last night ends done and the hub equals the ERP.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from syncflow_dagster.background import schedules as bg
from syncflow_dagster.background.launch import Launch, decide
from syncflow_dagster.background.runner import BackgroundRun, NightResult, run_night
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.faults import FaultPlan
from syncflow_dagster.orchestration.partitions import night_key
from syncflow_dagster.pipeline.backoff import Backoff
from syncflow_dagster.pipeline.lifecycle import RunInfo
from syncflow_dagster_tests.orchestration.conftest import MakeHarness, SyncHarness

BERLIN = ZoneInfo("Europe/Berlin")
ROWS = 70_000
BUDGET = 10_000
CHUNK = 2_500
FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.05)


@dataclass
class FakeClock:
    """Wall time that moves only when told to (each reading may step it on)."""

    now: datetime
    step: timedelta = timedelta(minutes=5)
    readings: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        self.readings.append(self.now)
        current = self.now
        self.now += self.step
        return current


def _defaults(h: SyncHarness) -> bg.BackgroundDefaults:
    return bg.BackgroundDefaults(
        h.settings.background_sync_window_start,
        h.settings.background_sync_window_end,
        "Europe/Berlin",
        BUDGET,
        CHUNK,
    )


def _night(
    h: SyncHarness,
    clock: FakeClock,
    n: int,
    on_chunk: Callable[[NightResult], None] | None = None,
) -> NightResult | str:
    """One night: the sensor's decision at the clock's time, then the run it launches."""
    defaults = _defaults(h)
    partitions = h.defs.get_job_def("sync_work_orders_background_job").partitions_def
    schedule = bg.get_schedule(h.store, h.catalog, defaults, "work_orders")
    decision = decide(schedule, clock.now, False, night_key(partitions))
    if not isinstance(decision, Launch):
        return decision
    with (
        ApiSmithClient(h.api.url, h.api.token, FAST) as source,
        ScheduleHubClient(h.hub.url, h.hub.token, FAST) as hub,
    ):
        job = BackgroundRun(
            h.catalog,
            source,
            hub,
            h.store,
            defaults,
            "Europe/Berlin",
            RunInfo(f"night-{n}-{clock.now:%H%M}", decision.night),
            1000,
            Backoff(0.01, 0.1),
            clock=clock,
            on_chunk=on_chunk,
        )
        return run_night(job, "work_orders", decision.night)


def _dies_on_call(n: int) -> Callable[..., object]:
    """ScheduleHubClient.ingest_body that kills the run (KeyboardInterrupt) on its n-th call."""
    original = ScheduleHubClient.ingest_body
    calls = [0]

    def ingest_body(self: ScheduleHubClient, *args: object, **kw: object) -> object:
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt("killed mid-chunk")
        return original(self, *args, **kw)  # type: ignore[arg-type]

    return ingest_body


def _evening(day: int, month: int = 10, hour: int = 19, minute: int = 5) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def big(make_harness: MakeHarness) -> SyncHarness:
    spec = DatasetSpec(seed=70, work_orders=ROWS, operations_per_order=0, bad_fraction=0.0)
    h = make_harness(spec, max_retries=1)
    assert h.run_entity("items").success
    bg.update_schedule(h.store, h.catalog, _defaults(h), "work_orders", rows_per_night=BUDGET)
    return h


def test_seventy_thousand_rows_over_exactly_seven_nights(big: SyncHarness) -> None:
    h = big
    results: list[NightResult] = []
    # 21–27 October 2026: the clocks go back in the night of the 24th to the 25th.
    for n, day in enumerate(range(21, 28), start=1):
        clock = FakeClock(_evening(day))
        if n == 3:
            # The hub goes down after the first chunk: the run fails, its chunk is kept.
            def hub_down(result: NightResult) -> None:
                if result.chunks == 1:
                    h.hub.injector.plan = FaultPlan.parse("only=/api/v1/ingest,503=1.0")

            with pytest.raises(Exception, match="503"):
                _night(h, clock, n, on_chunk=hub_down)
            h.hub.injector.plan = FaultPlan()
            failed = h.store.get_background("work_orders")
            assert failed is not None and failed.status == "failed"
            assert failed.night_rows == CHUNK  # progress kept
            clock.now += timedelta(hours=1)  # an hour later the hub is back
        if n == 5:
            # The run dies in the middle of its second chunk (the hub has some of it).
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(ScheduleHubClient, "ingest_body", _dies_on_call(5))
                with pytest.raises(KeyboardInterrupt):
                    _night(h, clock, n)
            killed = h.store.get_background("work_orders")
            assert killed is not None and killed.night_rows == CHUNK  # one chunk committed
        result = _night(h, clock, n)
        assert isinstance(result, NightResult), result
        results.append(result)
        for reading in clock.readings:  # every moment of the run was inside its window
            local = reading.astimezone(BERLIN)
            assert local.hour >= 19 or local.hour < 7, local
        row = h.store.get_background("work_orders")
        assert row is not None
        expected = "done" if n == 7 else "paused"
        assert (result.status, row.status, row.nights_used) == (expected, expected, n), (
            result,
            row,
        )
        assert row.night_rows == BUDGET
        assert row.rows_done == n * BUDGET

    assert [r.status for r in results] == ["paused"] * 6 + ["done"]
    assert "budget" in results[0].reason
    dst = h.store.recent_batches("work_orders", limit=50)
    nights = sorted({b["partition_key"] for b in dst if b["mode"] == "incremental"})
    assert nights == [f"2026-10-{d}" for d in range(21, 28)]
    row = h.store.get_background("work_orders")
    assert row is not None and row.rows_total == ROWS
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_erp_changes_during_a_multi_night_load_reach_the_hub(make_harness: MakeHarness) -> None:
    spec = DatasetSpec(seed=71, work_orders=20_000, operations_per_order=0, bad_fraction=0.0)
    h = make_harness(spec)
    assert h.run_entity("items").success
    bg.update_schedule(h.store, h.catalog, _defaults(h), "work_orders", rows_per_night=8_000)
    for n, day in enumerate(range(1, 10), start=1):
        result = _night(h, FakeClock(_evening(day, month=12)), n)
        assert isinstance(result, NightResult)
        if n == 1:  # rows behind the cursor change, and some go
            data = h.api.dataset
            loaded = data.ground_truth("work_orders").sort("ORA_ROWSCN").head(8_000)
            keys = loaded.get_column("WO_NO").to_list()
            data.update_keys("work_orders", [[k] for k in keys[:300]])
            data.delete_keys("work_orders", [[k] for k in keys[300:500]])
            data.delete("work_orders", 100, seed=4)  # and some not loaded yet
        if result.status == "done":
            break
    assert result.status == "done"
    batches = h.store.recent_batches("work_orders", limit=50)
    assert sum(b["deleted"] for b in batches) >= 200
    check = h.reconcile(["items", "work_orders"])
    assert check.ok, check.problems


def test_a_budget_or_window_changed_between_nights_takes_effect_the_next_night(
    big: SyncHarness,
) -> None:
    h = big
    first = _night(h, FakeClock(_evening(2, month=11)), 1)
    assert isinstance(first, NightResult) and first.rows == BUDGET
    bg.update_schedule(h.store, h.catalog, _defaults(h), "work_orders", rows_per_night=5_000)
    second = _night(h, FakeClock(_evening(3, month=11)), 2)
    assert isinstance(second, NightResult) and second.rows == 5_000
    # A window that opens at 22:00 from now on: at 19:05 nothing is launched.
    bg.update_schedule(
        h.store, h.catalog, _defaults(h), "work_orders", window_start="22:00", window_end="05:00"
    )
    assert _night(h, FakeClock(_evening(4, month=11)), 3) == "outside its window"
    later = _night(h, FakeClock(_evening(4, month=11, hour=22, minute=1)), 3)
    assert isinstance(later, NightResult) and later.rows == 5_000


def test_a_run_stops_cleanly_before_the_window_closes(big: SyncHarness) -> None:
    h = big
    # 06:49: time for two chunks, then the safety margin says stop.
    clock = FakeClock(_evening(5, month=11, hour=6, minute=49), step=timedelta(minutes=3))
    result = _night(h, clock, 1)
    assert isinstance(result, NightResult)
    assert result.status == "paused" and "window closes at 07:00" in result.reason
    assert result.rows == 2 * CHUNK
    assert all(t.astimezone(BERLIN).hour < 7 for t in clock.readings)
    batch = h.last_batch("work_orders")
    assert batch["status"] == "paused" and "window closes" in batch["error"]


def test_a_run_that_starts_after_its_window_closed_touches_nothing(big: SyncHarness) -> None:
    h = big
    with (
        ApiSmithClient(h.api.url, h.api.token, FAST) as source,
        ScheduleHubClient(h.hub.url, h.hub.token, FAST) as hub,
    ):
        late = FakeClock(_evening(6, month=11, hour=8, minute=30))  # it waited in the queue
        job = BackgroundRun(
            h.catalog,
            source,
            hub,
            h.store,
            _defaults(h),
            "Europe/Berlin",
            RunInfo("late"),
            clock=late,
        )
        result = run_night(job, "work_orders", "2026-11-05")
    assert result.status == "skipped" and "outside its window" in result.reason
    batch = h.last_batch("work_orders")
    assert (batch["status"], batch["fetched"]) == ("skipped", 0)
    assert h.hub_count("work_orders") == 0
    row = h.store.get_background("work_orders")
    assert row is not None and (row.rows_done, row.status) == (0, "pending")


def test_the_sensor_launches_only_inside_the_window_and_never_twice(big: SyncHarness) -> None:
    h = big
    defaults = _defaults(h)
    sensor = h.defs.get_sensor_def("background_sync_sensor")
    partitions = h.defs.get_job_def("sync_work_orders_background_job").partitions_def
    schedule = bg.get_schedule(h.store, h.catalog, defaults, "work_orders")
    key = night_key(partitions)
    evening = _evening(24)  # the night the clocks go back
    launch = decide(schedule, evening, False, key)
    assert isinstance(launch, Launch) and launch.night == "2026-10-24"
    # 13 hours from 19:05 CEST to 07:00 CET, plus the guard.
    assert launch.max_runtime == int(timedelta(hours=12, minutes=55).total_seconds()) + 600
    assert decide(schedule, evening + timedelta(hours=1), False, key) == launch.__class__(
        launch.entity, launch.night, launch.run_key, launch.max_runtime - 3600
    )
    assert decide(schedule, _evening(24, hour=12), False, key) == "outside its window"
    assert decide(schedule, evening, True, key) == "a run of the entity is queued or working"
    held = bg.pause_schedule(h.store, h.catalog, defaults, "work_orders", "audit")
    assert decide(held, evening, False, key) == "on hold"
    bg.resume_schedule(h.store, h.catalog, defaults, "work_orders")
    # The shipped sensor ticks with the same rows (and launches nothing by day).
    with dg.build_sensor_context(
        instance=h.instance, resources=dict(h.defs.resources or {})
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    now_open = schedule.window.is_open(datetime.now(UTC))
    assert bool(result.run_requests) == now_open


def test_ninety_nine_random_moments_are_judged_like_the_window(big: SyncHarness) -> None:
    schedule = bg.get_schedule(big.store, big.catalog, _defaults(big), "work_orders")
    rng = random.Random(5)
    start = datetime(2026, 3, 20, tzinfo=UTC)  # the spring change on 29 March is inside
    for _ in range(99):
        moment = start + timedelta(minutes=rng.randrange(20 * 24 * 60))
        local = moment.astimezone(BERLIN)
        inside = local.hour >= 19 or local.hour < 7
        assert schedule.window.is_open(moment) == inside, local
        if inside:
            assert 0 < schedule.window.seconds_left(moment) <= 13 * 3600
