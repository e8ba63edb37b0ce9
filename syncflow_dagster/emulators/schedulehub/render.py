"""The JSON the hub answers with: ingest results and stored records."""

from collections.abc import Sequence
from typing import Any

import orjson

from syncflow_dagster.emulators.schedulehub.apply import Outcome
from syncflow_dagster.emulators.schedulehub.state import (
    HASH,
    UPDATED_AT,
    Row,
    data_of,
    parent_pairs,
)


def ingest_response(batch_id: str, ids: Sequence[str], outcome: Outcome) -> bytes:
    """``{"batch_id": ..., "results": [...]}``, one result per record in request order."""
    statuses = outcome.statuses
    head = b'{"batch_id":' + orjson.dumps(batch_id) + b',"results":'
    if not ids:
        return head + b"[]}"
    if not outcome.errors and len(set(statuses)) == 1:
        # external_ids are checked hex: safe to splice without escaping.
        tail = f'","status":"{statuses[0]}"}}'
        body = (tail + ',{"external_id":"').join(ids)
        return head + ('[{"external_id":"' + body + tail + "]}").encode()
    results = []
    for pos, (external_id, status) in enumerate(zip(ids, statuses, strict=True)):
        result: dict[str, object] = {"external_id": external_id, "status": status}
        error = outcome.errors.get(pos)
        if error is not None:
            result["error"] = {"code": error[0], "detail": error[1]}
        results.append(result)
    return head + orjson.dumps(results) + b"}"


def record_json(external_id: str, row: Row) -> dict[str, Any]:
    """A stored record as the contract's StoredRecord."""
    return {
        "external_id": external_id,
        "data": data_of(row),
        "data_hash": row[HASH],
        "parents": [{"entity": e, "external_id": p} for e, p in parent_pairs(row)],
        "updated_at": row[UPDATED_AT],
    }


def records_page(page: Sequence[tuple[str, Row]], next_cursor: str | None) -> bytes:
    """A page of stored records and the cursor of the next one (null at the end)."""
    return orjson.dumps(
        {"records": [record_json(i, row) for i, row in page], "next_cursor": next_cursor}
    )
