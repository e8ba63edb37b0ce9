"""The shipped schedules: a cadence for the parents, and no schedule for background entities."""

from datetime import UTC, datetime

import dagster as dg

from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.settings import load_settings


def test_cadence_schedules_switch_on_with_the_background_syncs() -> None:
    on = build_definitions(load_settings(background_sync_enabled=True))
    off = build_definitions(load_settings(background_sync_enabled=False))
    for defs, status in (
        (on, dg.DefaultScheduleStatus.RUNNING),
        (off, dg.DefaultScheduleStatus.STOPPED),
    ):
        names = {s.name for s in defs.schedules or []}
        # Nightly entities are launched by background_sync_sensor, not by a schedule.
        assert names == {"sync_items_schedule", "sync_work_centers_schedule"}
        for schedule in defs.schedules or []:
            assert isinstance(schedule, dg.ScheduleDefinition)
            assert schedule.default_status == status, schedule.name
    background = on.get_sensor_def("background_sync_sensor")
    assert background.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_cadence_schedule_requests_the_partition_of_the_moment() -> None:
    defs = build_definitions(load_settings())
    items = defs.get_schedule_def("sync_items_schedule")
    assert items.cron_schedule == "15 * * * *"
    tick = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        [request] = items.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-25"  # 10:15 Berlin: the window opened 25 Nov 19:00
    assert request.job_name is None or request.job_name == "sync_items_job"
    assert request.tags["syncflow/entity"] == "items"
    assert request.run_key == "items-2026-11-26T10:15+01:00"
