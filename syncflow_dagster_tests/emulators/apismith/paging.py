"""Client-side paging helpers for the tests (real HTTP through httpx)."""

import httpx
import orjson

NDJSON = "application/x-ndjson"


def read_records(
    client: httpx.Client,
    entity: str,
    *,
    limit: int = 1000,
    since: int | None = None,
    ndjson: bool = False,
    cursor: str | None = None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """All records from ``cursor`` on, and per page what came with it (cursor, watermark)."""
    records: list[dict[str, object]] = []
    pages: list[dict[str, object]] = []
    while True:
        params: dict[str, object] = {"limit": limit}
        if since is not None:
            params["since_rowversion"] = since
        if cursor is not None:
            params["cursor"] = cursor
        headers = {"Accept": NDJSON} if ndjson else {}
        response = client.get(f"/api/v1/entities/{entity}/records", params=params, headers=headers)
        assert response.status_code == 200, response.text
        if ndjson:
            assert response.headers["content-type"].startswith(NDJSON)
            page = [orjson.loads(line) for line in response.content.splitlines()]
            cursor = response.headers.get("X-Next-Cursor")
            pages.append({"count": len(page), "next_cursor": cursor})
        else:
            body = response.json()
            assert body["entity"] == entity
            page = body["records"]
            cursor = body["next_cursor"]
            pages.append(
                {"count": len(page), "next_cursor": cursor, "watermark": body["watermark"]}
            )
        records.extend(page)
        if cursor is None:
            return records, pages


def read_keys(client: httpx.Client, entity: str, limit: int = 1000) -> list[list[object]]:
    """All keys of an entity, page by page."""
    keys: list[list[object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"/api/v1/entities/{entity}/keys", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        keys.extend(body["keys"])
        cursor = body["next_cursor"]
        if cursor is None:
            return keys
