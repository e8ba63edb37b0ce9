"""Entities over the API: checked as the loader checks them, written, versioned, reloaded."""

import json

import polars as pl
import yaml

from syncflow_dagster.config.loader import load_catalog
from syncflow_dagster_tests.api.conftest import Api

MACHINES = """\
# Machines, added over the API (this comment stays in the file).
name: machines
description: Machines from the ERP.
source:
  entity: work_centers
  key: [WC_CODE]
  rowversion: ORA_ROWSCN
  columns:
    WC_CODE: VARCHAR2(10)
    WC_NAME: VARCHAR2(80)
    ORA_ROWSCN: NUMBER(19,0)
target:
  entity: machines
  fields:
    - {name: code, from: WC_CODE, type: string}
    - {name: name, from: WC_NAME, type: string}
"""

YAML = {"Content-Type": "application/yaml"}


def test_add_writes_the_file_records_the_mapping_and_reloads(api: Api) -> None:
    answer = api.post("/api/v1/entities", content=MACHINES, headers=YAML)
    assert answer.status_code == 201, answer.text
    change = answer.json()
    assert change["entity"] == "machines" and change["action"] == "created"
    assert change["mapping_version"] == 1
    assert change["code_location"] == {"reloaded": True, "detail": "code location 'fake' reloaded"}
    assert answer.headers["location"] == "/api/v1/entities/machines"
    written = api.entities_dir / "machines.yaml"
    assert written.read_text() == MACHINES
    assert "machines" in load_catalog(api.entities_dir).entities
    assert api.store.latest_mapping_version("machines") == 1
    assert api.dagster.reloads == 1
    detail = api.get("/api/v1/entities/machines").json()
    assert detail["yaml"] == MACHINES
    assert detail["config"]["target"]["fields"][0] == {
        "name": "code",
        "from": "WC_CODE",
        "type": "string",
    }
    assert detail["state"]["records"] == 0
    assert detail["job"] == "sync_machines_job"
    names = [e["name"] for e in api.get("/api/v1/entities").json()]
    assert names[0] == "items" and "machines" in names


def test_a_json_body_is_the_same_configuration(api: Api) -> None:
    body = yaml.safe_load(MACHINES)
    answer = api.post("/api/v1/entities", json=body)
    assert answer.status_code == 201, answer.text
    assert yaml.safe_load((api.entities_dir / "machines.yaml").read_text()) == body


def test_a_bad_configuration_is_422_naming_file_entity_and_field(api: Api) -> None:
    bad = MACHINES.replace("from: WC_NAME", "from: WC_NAMEX")
    answer = api.post("/api/v1/entities", content=bad, headers=YAML)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert str(api.entities_dir / "machines.yaml") in detail
    assert "entity 'machines'" in detail and "WC_NAMEX" in detail
    assert not (api.entities_dir / "machines.yaml").exists()
    # Across entities too: a parent that is not configured.
    orphan = MACHINES + "parents:\n  - {entity: nowhere, columns: [WC_CODE]}\n"
    answer = api.post("/api/v1/entities", content=orphan, headers=YAML)
    assert answer.status_code == 422
    assert "parent entity 'nowhere' is not configured" in answer.json()["detail"]
    # Not YAML at all; a second hub feeder; an unknown field.
    assert api.post("/api/v1/entities", content="name: [", headers=YAML).status_code == 422
    twin = MACHINES.replace("entity: machines", "entity: items")
    assert (
        "already fed" in api.post("/api/v1/entities", content=twin, headers=YAML).json()["detail"]
    )
    assert api.post("/api/v1/entities", json={"name": "x", "colour": "red"}).status_code == 422
    assert api.dagster.reloads == 0
    assert sorted(p.name for p in api.entities_dir.iterdir()) == [
        "items.yaml",
        "work_centers.yaml",
        "work_order_operations.yaml",
        "work_orders.yaml",
    ]


def test_add_refuses_a_name_taken_and_other_media(api: Api) -> None:
    items = (api.entities_dir / "items.yaml").read_text()
    answer = api.post("/api/v1/entities", content=items, headers=YAML)
    assert answer.status_code == 409
    answer = api.post("/api/v1/entities", content=MACHINES, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 415


def test_update_changes_the_mapping_version_and_refuses_a_rename(api: Api) -> None:
    items = (api.entities_dir / "items.yaml").read_text()
    first = api.put("/api/v1/entities/items", content=items, headers=YAML)
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "updated"
    changed = items.replace("transforms: [upper]}", "transforms: [upper, trim]}", 1)
    assert changed != items
    second = api.put("/api/v1/entities/items", content=changed, headers=YAML)
    assert second.status_code == 200, second.text
    assert second.json()["mapping_version"] == first.json()["mapping_version"] + 1
    assert (api.entities_dir / "items.yaml").read_text() == changed
    renamed = changed.replace("name: items", "name: parts", 1)
    answer = api.put("/api/v1/entities/items", content=renamed, headers=YAML)
    assert answer.status_code == 422 and "not 'items'" in answer.json()["detail"]
    assert api.put("/api/v1/entities/nothing", content=changed, headers=YAML).status_code == 404


def test_delete_refuses_while_state_is_held_and_purges_on_request(api: Api) -> None:
    assert api.post("/api/v1/entities", content=MACHINES, headers=YAML).status_code == 201
    store = api.store
    batch = store.start_batch("machines", "run-1", "full")
    store.finish_batch(batch, "succeeded", {"fetched": 1})
    letter = pl.DataFrame(
        {"stage": ["validate"], "code": ["required"], "raw": [json.dumps({"WC_CODE": "M1"})]}
    )
    store.add_failed(batch, "machines", letter)
    answer = api.delete("/api/v1/entities/machines")
    assert answer.status_code == 409
    assert "1 open dead letters" in answer.json()["detail"]
    assert (api.entities_dir / "machines.yaml").exists()
    answer = api.delete("/api/v1/entities/machines", params={"purge": "true"})
    assert answer.status_code == 200, answer.text
    purged = answer.json()["purged"]
    assert (
        purged["dead_letters"] == 1 and purged["batches"] == 1 and purged["mapping_versions"] == 1
    )
    assert not (api.entities_dir / "machines.yaml").exists()
    assert api.get("/api/v1/entities/machines").status_code == 404
    assert store.recent_batches("machines") == []


def test_delete_refuses_a_parent_and_a_running_entity(api: Api) -> None:
    answer = api.delete("/api/v1/entities/items", params={"purge": "true"})
    assert answer.status_code == 409
    assert "parent of work_orders" in answer.json()["detail"]
    assert api.post("/api/v1/entities", content=MACHINES, headers=YAML).status_code == 201
    api.store.start_batch("machines", "run-2", "full")
    answer = api.delete("/api/v1/entities/machines", params={"purge": "true"})
    assert answer.status_code == 409 and "under way" in answer.json()["detail"]
    assert api.delete("/api/v1/entities/nothing").status_code == 404


def test_dagster_down_still_writes_and_says_it_did_not_reload(api: Api) -> None:
    api.dagster.down = True
    answer = api.post("/api/v1/entities", content=MACHINES, headers=YAML)
    assert answer.status_code == 201
    assert answer.json()["code_location"]["reloaded"] is False
