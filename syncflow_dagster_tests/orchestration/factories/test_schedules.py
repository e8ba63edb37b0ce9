from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.orchestration.factories.schedules import seconds_to_window_end, window_hours
from syncflow_dagster.settings import load_settings

BERLIN = ZoneInfo("Europe/Berlin")


def test_window_hours_cross_midnight() -> None:
    assert window_hours(time(19), time(7)) == [0, 1, 2, 3, 4, 5, 6, 19, 20, 21, 22, 23]
    assert window_hours(time(8, 30), time(12)) == [9, 10, 11]
    assert window_hours(time(22), time(23)) == [22]


def test_seconds_to_window_end() -> None:
    assert seconds_to_window_end(datetime(2026, 11, 26, 23, 0, tzinfo=BERLIN), time(7)) == 8 * 3600
    assert seconds_to_window_end(datetime(2026, 11, 27, 6, 30, tzinfo=BERLIN), time(7)) == 1800


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(load_settings(background_sync_enabled=True))


def test_nightly_schedule_requests_the_window_partition(defs: dg.Definitions) -> None:
    schedule = defs.get_schedule_def("sync_work_orders_nightly_schedule")
    assert schedule.cron_schedule == "0 0,1,2,3,4,5,6,19,20,21,22,23 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # 02:00 Berlin on 27 Nov belongs to the window that opened at 19:00 on 26 Nov.
    tick = datetime(2026, 11, 27, 2, 0, tzinfo=BERLIN)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        result = schedule.evaluate_tick(context)
    [request] = result.run_requests or []
    assert request.partition_key == "2026-11-26"
    assert request.tags["syncflow/entity"] == "work_orders"
    assert request.tags["dagster/max_runtime"] == str(5 * 3600)
    assert request.run_key == "work_orders-2026-11-27T02:00+01:00"


def test_cadence_schedule_and_disabled_background() -> None:
    defs = build_definitions(load_settings(background_sync_enabled=False))
    assert (
        defs.get_schedule_def("sync_work_orders_nightly_schedule").default_status
        == dg.DefaultScheduleStatus.STOPPED
    )
    items = defs.get_schedule_def("sync_items_schedule")
    assert items.cron_schedule == "15 * * * *"
    tick = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        [request] = items.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-25"  # 10:15 Berlin: the window opened 25 Nov 19:00
    assert request.job_name is None or request.job_name == "sync_items_job"
