"""Sandbox raw lines: the emulator serves exact NDJSON text (even bytes that are not UTF-8)."""

import base64

import orjson
import pytest

from syncflow_dagster.emulators.apismith import ErpDataset, MutationError
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith
from syncflow_dagster_tests.emulators.apismith.conftest import SMALL
from syncflow_dagster_tests.emulators.apismith.paging import NDJSON, read_keys

ENTITY = "work_orders"


def _ndjson_lines(api: ApiSmithHandle, limit: int = 50_000) -> list[bytes]:
    with api.client() as client:
        response = client.get(
            f"/api/v1/entities/{ENTITY}/records",
            params={"limit": limit},
            headers={"Accept": NDJSON},
        )
    assert response.status_code == 200, response.text
    return response.content.splitlines()


def _key_at(dataset: ErpDataset, index: int) -> tuple[object, ...]:
    view, _ = dataset.views(ENTITY)
    return tuple(k[index] for k in view.keys)


def test_a_raw_line_replaces_the_rendering_in_place(fresh_api: ApiSmithHandle) -> None:
    before = _ndjson_lines(fresh_api)
    with fresh_api.client() as client:
        keys_before = read_keys(client, ENTITY)
    raw = b'{"WO_NO":"\xff\xfe", "ORDER_QTY": NaN'
    fresh_api.dataset.serve_raw_lines(ENTITY, {_key_at(fresh_api.dataset, 7): raw})
    after = _ndjson_lines(fresh_api)
    assert len(after) == len(before)
    assert after[7] == raw
    assert after[:7] == before[:7] and after[8:] == before[8:]
    with fresh_api.client() as client:
        assert read_keys(client, ENTITY) == keys_before  # the key listing is not sabotaged
    # A page that ends on the raw line carries it exactly, too.
    assert _ndjson_lines(fresh_api, limit=8)[-1] == raw


def test_a_mutation_of_the_row_or_clearing_renders_it_again(fresh_api: ApiSmithHandle) -> None:
    dataset = fresh_api.dataset
    key, other = _key_at(dataset, 3), _key_at(dataset, 4)
    dataset.serve_raw_lines(ENTITY, {key: "[1, 2]", other: "[3]"})
    assert b"[1, 2]" in _ndjson_lines(fresh_api) and b"[3]" in _ndjson_lines(fresh_api)
    dataset.update_keys(ENTITY, [list(key)], {"PRIORITY": 1})
    lines = _ndjson_lines(fresh_api)
    assert b"[1, 2]" not in lines and b"[3]" in lines
    assert orjson.loads(lines[-1])["WO_NO"] == key[0]  # updated: the newest rowversion
    dataset.clear_raw_lines(ENTITY)
    assert b"[3]" not in _ndjson_lines(fresh_api)


def test_raw_lines_refuse_newlines_and_unknown_keys() -> None:
    dataset = ErpDataset(SMALL)
    key = _key_at(dataset, 0)
    with pytest.raises(MutationError, match="newline"):
        dataset.serve_raw_lines(ENTITY, {key: "{}\n{}"})
    with pytest.raises(MutationError, match="no row"):
        dataset.serve_raw_lines(ENTITY, {("WO-NOPE",): "{}"})


def test_the_admin_action_serves_text_and_base64_and_clears() -> None:
    with running_apismith(SMALL) as api, api.client() as client:
        first, second = _key_at(api.dataset, 0), _key_at(api.dataset, 1)
        response = client.post(
            f"/admin/entities/{ENTITY}/raw-lines",
            json={
                "lines": [
                    {"key": list(first), "line": "[1, 2]"},
                    {"key": list(second), "line_base64": base64.b64encode(b"{\xff}").decode()},
                ]
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["keys"] == [list(first), list(second)]
        assert _ndjson_lines(api)[:2] == [b"[1, 2]", b"{\xff}"]
        bad = client.post(f"/admin/entities/{ENTITY}/raw-lines", json={"lines": [{"key": []}]})
        assert bad.status_code == 400
        cleared = client.post(f"/admin/entities/{ENTITY}/raw-lines", json={"clear": True})
        assert cleared.status_code == 200
        assert all(line.startswith(b'{"') for line in _ndjson_lines(api))
