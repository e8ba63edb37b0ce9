"""A mapping the hub cannot take fails the run at the map step, naming file, entity and field."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from syncflow_dagster_tests.orchestration.conftest import (
    APISMITH_TOKEN,
    SCHEDULEHUB_TOKEN,
    MakeHarness,
    edited_entities,
    target_field,
)

Edit = Callable[[dict[str, Any]], None]


def add_unknown_field(raw: dict[str, Any]) -> None:
    raw["target"]["fields"].append(
        {"name": "shelf_life_days", "from": "LEAD_TIME_DAYS", "type": "integer"}
    )


def change_type(raw: dict[str, Any]) -> None:
    target_field(raw, "lead_time_days")["type"] = "number"


def drop_required(raw: dict[str, Any]) -> None:
    raw["target"]["fields"] = [f for f in raw["target"]["fields"] if f["name"] != "uom"]


def unknown_entity(raw: dict[str, Any]) -> None:
    raw["target"]["entity"] = "parts"


CASES = [
    (add_unknown_field, "target.fields[shelf_life_days]", "has no field 'shelf_life_days'"),
    (change_type, "target.fields[lead_time_days]", "type number but ScheduleHub expects integer"),
    (drop_required, "target.fields", "ScheduleHub requires uom"),
    (unknown_entity, "target.entity", "ScheduleHub has no entity 'parts'"),
]


def error_text(error: Any) -> str:
    """A serialized error with its causes, as one text."""
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


@pytest.mark.parametrize(("edit", "field", "reason"), CASES, ids=[c[0].__name__ for c in CASES])
def test_a_mapping_the_hub_cannot_take_fails_at_the_map_step(
    make_harness: MakeHarness, tmp_path: Path, edit: Edit, field: str, reason: str
) -> None:
    entities = edited_entities(tmp_path, "items", edit)
    h = make_harness(entities_dir=entities)
    result = h.run_entity("items", raise_on_error=False)
    assert not result.success

    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == ["map"]
    text = error_text(failures[0].step_failure_data.error)
    assert "ConfigError" in text
    assert str(entities / "items.yaml") in text
    assert "entity 'items'" in text
    assert f"field '{field}'" in text
    assert reason in text
    started = [
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
    ]
    assert started == ["fetch", "normalize", "validate", "map"]

    batch = h.last_batch("items")
    assert batch["status"] == "failed" and batch["run_id"] == result.run_id
    assert batch["watermark_to"] is None
    assert str(entities / "items.yaml") in batch["error"] and field in batch["error"]
    assert h.hub.store.count("items") == 0
    assert h.store.count_state("items") == 0
    # A failed run leaves no secret behind in Dagster's event log or the state DB.
    logs = "\n".join(str(e) for e in h.instance.all_logs(result.run_id))
    assert APISMITH_TOKEN not in logs and SCHEDULEHUB_TOKEN not in logs
    assert APISMITH_TOKEN not in batch["error"] and SCHEDULEHUB_TOKEN not in batch["error"]
