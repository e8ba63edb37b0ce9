"""Schedules over the API: background-sync rows through the CLI's functions; Dagster's switches."""

from datetime import UTC, datetime, timedelta

from syncflow_dagster.api.dagster import Instigator
from syncflow_dagster.background import schedules as bg
from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster_tests.api.conftest import Api


def _open_window_now() -> tuple[str, str]:
    now = datetime.now(UTC)
    return (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime(
        "%H:%M"
    )


def test_rows_are_created_changed_held_reset_and_deleted(api: Api) -> None:
    listed = api.get("/api/v1/schedules").json()
    nightly = [s["entity"] for s in listed]
    assert nightly == ["work_order_operations", "work_orders"]  # the YAML's nightly entities
    created = api.post(
        "/api/v1/schedules",
        json={
            "entity": "items",
            "window_start": "20:00",
            "window_end": "06:00",
            "target_nights": 7,
        },
    )
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["window_start"], row["window_end"], row["target_nights"]) == ("20:00", "06:00", 7)
    assert api.post("/api/v1/schedules", json={"entity": "items"}).status_code == 409
    assert api.post("/api/v1/schedules", json={"entity": "nothing"}).status_code == 404
    bad = api.post("/api/v1/schedules", json={"entity": "work_centers", "window_start": "25:99"})
    assert bad.status_code == 422 and "window_start" in bad.json()["detail"]
    changed = api.put("/api/v1/schedules/items", json={"rows_per_night": 5000}).json()
    assert (changed["rows_per_night"], changed["target_nights"], changed["budget"]) == (
        5000,
        None,
        5000,
    )
    assert changed["window_start"] == "20:00"  # what was not given stays
    both = api.put("/api/v1/schedules/items", json={"rows_per_night": 1, "target_nights": 2})
    assert both.status_code == 422
    # The same functions as the CLI: what the API wrote is what they read.
    catalog = load_catalog(api.entities_dir)
    defaults = bg.BackgroundDefaults.from_settings(api.settings)
    assert bg.get_schedule(api.store, catalog, defaults, "items").row.rows_per_night == 5000
    held = api.post("/api/v1/schedules/items/pause", json={"reason": "month end"}).json()
    assert held["on_hold"] is True and held["last_error"] == "on hold: month end"
    assert api.post("/api/v1/schedules/items/trigger").status_code == 409  # on hold
    assert api.post("/api/v1/schedules/items/resume").json()["on_hold"] is False
    api.store.update_background("items", rows_done=300, rows_total=1000, nights_used=2)
    stats = api.get("/api/v1/schedules/items/stats").json()
    assert (stats["rows_done"], stats["done_share"], stats["nights_left"]) == (300, 0.3, 1)
    reset = api.post("/api/v1/schedules/items/reset").json()
    assert (reset["rows_done"], reset["nights_used"], reset["status"]) == (0, 0, "pending")
    every = api.get("/api/v1/schedules/stats").json()
    assert {s["entity"] for s in every} == {"items", "work_orders", "work_order_operations"}
    assert api.delete("/api/v1/schedules/items").json() == {"entity": "items", "deleted": True}
    assert api.delete("/api/v1/schedules/items").status_code == 404
    assert api.get("/api/v1/schedules/items").status_code == 404


def test_trigger_inside_the_window(api: Api) -> None:
    start, end = _open_window_now()
    made = api.post(
        "/api/v1/schedules",
        json={
            "entity": "work_centers",
            "window_start": start,
            "window_end": end,
            "timezone": "UTC",
        },
    )
    assert made.status_code == 201, made.text
    triggered = api.post("/api/v1/schedules/work_centers/trigger")
    assert triggered.status_code == 200, triggered.text
    assert triggered.json()["trigger_requested_at"] is not None
    closed_start = (datetime.now(UTC) + timedelta(hours=3)).strftime("%H:%M")
    closed_end = (datetime.now(UTC) + timedelta(hours=4)).strftime("%H:%M")
    api.put(
        "/api/v1/schedules/work_centers",
        json={"window_start": closed_start, "window_end": closed_end},
    )
    closed = api.post("/api/v1/schedules/work_centers/trigger")
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


def test_start_and_stop_switch_dagsters_schedules_and_sensors(api: Api) -> None:
    api.dagster.switches = {
        "sync_items_schedule": Instigator("sync_items_schedule", "schedule", "RUNNING"),
        "background_sync_sensor": Instigator("background_sync_sensor", "sensor", "RUNNING"),
    }
    stopped = api.post("/api/v1/schedules/stop")
    assert stopped.status_code == 200, stopped.text
    assert sorted(stopped.json()["switched"]) == ["background_sync_sensor", "sync_items_schedule"]
    assert {i["status"] for i in stopped.json()["instigators"]} == {"STOPPED"}
    started = api.post("/api/v1/schedules/start", json={"names": ["background_sync_sensor"]}).json()
    assert started["switched"] == ["background_sync_sensor"]
    status = api.get("/api/v1/schedules/status").json()
    by_name = {i["name"]: i["status"] for i in status["instigators"]}
    assert by_name == {"background_sync_sensor": "RUNNING", "sync_items_schedule": "STOPPED"}
    assert api.post("/api/v1/schedules/start", json={"names": ["nope"]}).status_code == 404
    assert api.post("/api/v1/schedules/stop", token=None).status_code == 401
    api.dagster.down = True
    assert api.post("/api/v1/schedules/start").status_code == 502
    assert api.get("/api/v1/schedules/status").json()["dagster_error"]
