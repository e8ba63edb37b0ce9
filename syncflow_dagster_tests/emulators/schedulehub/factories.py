"""Records, batches and schemas for the ScheduleHub emulator tests."""

import itertools
import zlib
from pathlib import Path
from typing import Any

import httpx

_counter = itertools.count(1)

SELF_PARENT_SCHEMAS = """
entities:
  - name: items
    parents: []
    fields:
      - {name: item_no, type: string, required: true}
  - name: tasks
    parents: [tasks, items]
    fields:
      - {name: title, type: string, required: true}
      - {name: hours, type: number, required: false}
"""


def hexid(n: int | None = None) -> str:
    """A 32-hex external_id (a fresh one when n is None)."""
    return f"{next(_counter) if n is None else n:032x}"


def hexhash(n: int = 0) -> str:
    """A 64-hex data_hash."""
    return f"{n:064x}"


def item_data(no: str = "IT-1", **extra: Any) -> dict[str, Any]:
    """Valid data for an item."""
    return {"item_no": no, "item_type": "make", "uom": "EA", "is_active": True, **extra}


def wo_data(no: str = "WO-1", **extra: Any) -> dict[str, Any]:
    """Valid data for a work order."""
    return {"order_no": no, "item_no": "IT-1", "quantity": 5, "status": "released", **extra}


def upsert(
    external_id: str,
    data: dict[str, Any],
    data_hash: str | None = None,
    parents: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """An upsert record."""
    record: dict[str, Any] = {
        "external_id": external_id,
        "op": "upsert",
        "data": data,
        "data_hash": data_hash or hexhash(zlib.crc32(repr(sorted(data.items())).encode())),
    }
    if parents is not None:
        record["parents"] = [{"entity": e, "external_id": p} for e, p in parents]
    return record


def delete(external_id: str) -> dict[str, Any]:
    """A delete record."""
    return {"external_id": external_id, "op": "delete"}


def post(
    client: httpx.Client, entity: str, records: list[dict[str, Any]], batch_id: str = "b"
) -> httpx.Response:
    """POST one batch."""
    return client.post(f"/api/v1/ingest/{entity}", json={"batch_id": batch_id, "records": records})


def statuses(response: httpx.Response) -> list[str]:
    """The statuses of an ingest answer, in order."""
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def errors(response: httpx.Response) -> list[tuple[str, str] | None]:
    """(code, detail) of each result (None when not rejected)."""
    return [
        (r["error"]["code"], r["error"]["detail"]) if r["status"] == "rejected" else None
        for r in response.json()["results"]
    ]


def write_schemas(tmp_path: Path, text: str = SELF_PARENT_SCHEMAS) -> Path:
    """A schema file in tmp_path."""
    path = tmp_path / "entities.yaml"
    path.write_text(text)
    return path
