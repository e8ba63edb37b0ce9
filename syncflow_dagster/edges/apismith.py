"""APISmith client: entity descriptions, NDJSON keyset paging, key listings.

Pages are read as NDJSON with every column as text (JSON numbers arrive as
their text), so the normalizer sees each value as the ERP rendered it. The next
page is requested as soon as a page's headers name its cursor, while the page
before is still being parsed: paging is sequential on the wire but overlaps
with the parsing.
"""

import contextlib
import io
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import polars as pl

from syncflow_dagster.edges.http import ApiError, check_response, json_body
from syncflow_dagster.edges.lean_http import bearer_client
from syncflow_dagster.edges.retry import RetryPolicy

SERVICE = "APISmith"
TOKEN_SETTING = "APISMITH_TOKEN"
MAX_PAGE = 50_000


@dataclass(frozen=True)
class SourceEntity:
    """An entity as APISmith describes it."""

    name: str
    key: tuple[str, ...]
    rowversion: str
    columns: dict[str, str]


@dataclass(frozen=True)
class FetchResult:
    """The records of one fetch, as text columns, and whether a row limit cut it short."""

    frame: pl.DataFrame
    pages: int
    truncated: bool


class ApiSmithClient:
    """A client of one APISmith server."""

    def __init__(
        self,
        base_url: str,
        token: str,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        page_size: int = MAX_PAGE,
    ) -> None:
        self._http = bearer_client(base_url, token, timeout, connections=4)
        self.retry = retry or RetryPolicy()
        self.page_size = max(1, min(page_size, MAX_PAGE))

    def close(self) -> None:
        """Close the idle connections."""
        self._http.close()

    def __enter__(self) -> "ApiSmithClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, what: str, path: str, **kw: Any) -> httpx.Response:
        def once() -> httpx.Response:
            response = self._http.request("GET", path, **kw)
            check_response(SERVICE, TOKEN_SETTING, what, response)
            return response

        return self.retry.call(f"{SERVICE} {what}", once)

    def entities(self) -> dict[str, SourceEntity]:
        """Every entity the ERP exposes, by name."""
        doc = json_body(SERVICE, "entity list", self._get("entity list", "/api/v1/entities"))
        out = {}
        for e in doc["entities"]:
            out[e["name"]] = SourceEntity(
                name=e["name"],
                key=tuple(e["key"]),
                rowversion=e["rowversion"],
                columns={c["name"]: c["type"] for c in e["columns"]},
            )
        return out

    def entity(self, name: str) -> SourceEntity:
        """One entity's description.

        Raises:
            ApiError: when APISmith does not expose it.
        """
        entities = self.entities()
        if name not in entities:
            raise ApiError(
                f"{SERVICE} exposes no entity '{name}' (it has: {', '.join(sorted(entities))})", 404
            )
        return entities[name]

    def count(self, entity: str, since_rowversion: int | None = None) -> tuple[int, int | None]:
        """How many rows there are above ``since_rowversion``, and the highest rowversion."""
        params = {} if since_rowversion is None else {"since_rowversion": since_rowversion}
        what = f"count of '{entity}'"
        doc = json_body(
            SERVICE, what, self._get(what, f"/api/v1/entities/{entity}/count", params=params)
        )
        return int(doc["count"]), doc.get("max_rowversion")

    def _pages(
        self, entity: str, since_rowversion: int | None, max_rows: int | None
    ) -> Iterator[bytes]:
        """NDJSON page bodies, fetched one ahead of the consumer on a helper thread."""
        pages: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            cursor: str | None = None
            remaining = max_rows
            try:
                while not stop.is_set():
                    limit = self.page_size if remaining is None else min(self.page_size, remaining)
                    params: dict[str, Any] = {"limit": limit}
                    if cursor:
                        params["cursor"] = cursor
                    if since_rowversion is not None:
                        params["since_rowversion"] = since_rowversion
                    response = self._get(
                        f"records of '{entity}'",
                        f"/api/v1/entities/{entity}/records",
                        params=params,
                        headers={"Accept": "application/x-ndjson"},
                    )
                    pages.put(response.content)
                    cursor = response.headers.get("x-next-cursor")
                    if remaining is not None:
                        remaining -= response.content.count(b"\n") + (
                            0 if response.content.endswith(b"\n") or not response.content else 1
                        )
                    if not cursor or (remaining is not None and remaining <= 0):
                        break
                pages.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                pages.put(exc)

        thread = threading.Thread(target=produce, name=f"apismith-pages-{entity}", daemon=True)
        thread.start()
        try:
            while True:
                item = pages.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    pages.get(timeout=0.05)
            thread.join()

    def fetch(
        self,
        entity: str,
        columns: Sequence[str],
        since_rowversion: int | None = None,
        max_rows: int | None = None,
    ) -> FetchResult:
        """All records above ``since_rowversion`` (at most ``max_rows``), every column as text.

        Columns the ERP sends but ``columns`` does not name are not read.
        """
        schema = dict.fromkeys(columns, pl.String())
        frames = []
        pages = 0
        for body in self._pages(entity, since_rowversion, max_rows):
            pages += 1
            if body and not body.isspace():  # isspace stops at the first non-space byte
                frames.append(pl.read_ndjson(io.BytesIO(body), schema=schema))
        frame = pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=schema)
        if max_rows is not None and frame.height > max_rows:
            frame = frame.head(max_rows)
        truncated = max_rows is not None and frame.height >= max_rows
        return FetchResult(frame=frame, pages=pages, truncated=truncated)

    def keys(self, entity: str, key_columns: Sequence[str]) -> pl.DataFrame:
        """The business keys of every row present now, one text column per key column."""
        parts: list[pl.DataFrame] = []
        cursor: str | None = None
        width = len(key_columns)
        while True:
            params: dict[str, Any] = {"limit": MAX_PAGE}
            if cursor:
                params["cursor"] = cursor
            what = f"keys of '{entity}'"
            page = json_body(
                SERVICE,
                what,
                self._get(what, f"/api/v1/entities/{entity}/keys", params=params),
                lambda body: pl.read_json(
                    io.BytesIO(body),
                    schema={"keys": pl.List(pl.List(pl.String)), "next_cursor": pl.String},
                ),
            )
            keys = page.select(pl.col("keys").explode()).drop_nulls()
            if keys.height:
                bad = keys.filter(pl.col("keys").list.len() != width).height
                if bad:
                    raise ApiError(
                        f"{SERVICE} keys of '{entity}': {bad} key(s) without {width} values"
                    )
                parts.append(
                    keys.select(pl.col("keys").list.to_struct(fields=list(key_columns))).unnest(
                        "keys"
                    )
                )
            cursor = page.item(0, "next_cursor")
            if not cursor:
                break
        if not parts:
            return pl.DataFrame(schema=dict.fromkeys(key_columns, pl.String()))
        return pl.concat(parts)
