"""The HTTP API of the contract (``schedulehub.openapi.yaml``) over a :class:`HubStore`."""

import gc
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from syncflow_dagster.emulators.common.auth import BearerAuthMiddleware
from syncflow_dagster.emulators.common.faults import (
    FaultInjectionMiddleware,
    FaultInjector,
    FaultPlan,
)
from syncflow_dagster.emulators.common.problem import problem
from syncflow_dagster.emulators.schedulehub.batch import BatchError, parse_batch
from syncflow_dagster.emulators.schedulehub.render import (
    ingest_response,
    record_json,
    records_page,
)
from syncflow_dagster.emulators.schedulehub.schemas import load_schemas
from syncflow_dagster.emulators.schedulehub.store import HubStore
from syncflow_dagster.paths import CONTRACTS_DIR

CONTRACT = CONTRACTS_DIR / "schedulehub.openapi.yaml"
JSON = "application/json"
INGEST_PREFIX = "/api/v1/ingest/"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_DIGITS = re.compile("[0-9]{1,6}")
logger = logging.getLogger(__name__)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running in the middle of a batch.

    A batch allocates tens of thousands of short-lived containers (the parsed
    body) that reference counting frees at the end; a collection triggered
    halfway would walk them all for nothing. What the batch leaves behind are
    the new rows: tuples of strings and bytes, which a young-generation
    collection stops tracking. Collecting right after the batch does that while
    they are still in the CPU cache; left to later, the same collection walks a
    million cold tuples.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Handlers:
    """The endpoints, bound to one store."""

    def __init__(self, store: HubStore) -> None:
        self.store = store
        entities = [schema.to_json() for schema in store.schemas.values()]
        self._entities = orjson.dumps({"entities": entities})
        self._contract = CONTRACT.read_bytes()

    def _unknown(self, entity: str) -> Response | None:
        if entity in self.store.schemas:
            return None
        return problem(404, f"unknown entity {entity!r}")

    async def health(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def contract(self, request: Request) -> Response:
        return Response(self._contract, media_type="application/yaml")

    async def entities(self, request: Request) -> Response:
        return Response(self._entities, media_type=JSON)

    def ingest_body(self, entity: str, body: bytes) -> Response:
        """Apply one ingest request's body to an entity: results, or a problem."""
        unknown = self._unknown(entity)
        if unknown is not None:
            return unknown
        with _collector_paused():
            applied = self.store.ingest_fast(entity, body)
            if applied is None:
                try:
                    batch = parse_batch(body)
                except BatchError as exc:
                    return problem(exc.status, exc.detail)
                applied = (batch.batch_id, batch.ids, self.store.ingest(entity, batch))
                del batch
            content = ingest_response(*applied)
            del applied
            gc.collect(0)
        return Response(content, media_type=JSON)

    async def ingest(self, request: Request) -> Response:
        return self.ingest_body(request.path_params["entity"], await request.body())

    async def records(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        unknown = self._unknown(entity)
        if unknown is not None:
            return unknown
        raw_limit = request.query_params.get("limit")
        limit = DEFAULT_LIMIT
        if raw_limit is not None:
            if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
                return problem(422, f"limit must be an integer from 1 to {MAX_LIMIT}")
            limit = int(raw_limit)
        cursor = request.query_params.get("cursor") or None
        page, next_cursor = self.store.page(entity, cursor, limit)
        return Response(records_page(page, next_cursor), media_type=JSON)

    async def record(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        unknown = self._unknown(entity)
        if unknown is not None:
            return unknown
        external_id = request.path_params["external_id"]
        row = self.store.row(entity, external_id)
        if row is None:
            return problem(404, f"no {entity} record with external_id {external_id!r}")
        return Response(orjson.dumps(record_json(external_id, row)), media_type=JSON)


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return problem(500, "internal error in the ScheduleHub emulator")


class _IngestFastPath:
    """POST /api/v1/ingest/{entity} straight to the handler, the rest to Starlette.

    Ingest is the hot path: skipping the router, the Request object and the
    exception middlewares saves a few percent of the server's time per batch.
    """

    def __init__(self, app: ASGIApp, handlers: _Handlers) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        entity = path[len(INGEST_PREFIX) :]
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(INGEST_PREFIX)
            or not entity
            or "/" in entity
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            response = self.handlers.ingest_body(entity, b"".join(chunks))
        except Exception:
            logger.exception("ingest into %r failed", entity)
            response = problem(500, "internal error in the ScheduleHub emulator")
        await response(scope, receive, send)


def _asgi(store: HubStore) -> ASGIApp:
    h = _Handlers(store)
    routes = [
        Route("/api/v1/health", h.health, methods=["GET"]),
        Route("/openapi.yaml", h.contract, methods=["GET"]),
        Route("/api/v1/entities", h.entities, methods=["GET"]),
        Route("/api/v1/ingest/{entity}", h.ingest, methods=["POST"]),
        Route("/api/v1/entities/{entity}/records", h.records, methods=["GET"]),
        Route("/api/v1/entities/{entity}/records/{external_id}", h.record, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_problem, Exception: _server_error},
    )
    return _IngestFastPath(app, h)


class ScheduleHubApp:
    """The emulator's ASGI app, with handles on its store and its fault injector."""

    def __init__(self, asgi: ASGIApp, store: HubStore, injector: FaultInjector) -> None:
        self._asgi = asgi
        self.store = store
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        await self._asgi(scope, receive, send)

    def close(self) -> None:
        """Close the store (its SQLite file, if any)."""
        self.store.close()


def create_app(
    schemas_path: str | Path,
    db_path: str | Path | None,
    token: str,
    faults: FaultPlan | None = None,
) -> ScheduleHubApp:
    """The emulator as an ASGI app: faults first, then bearer auth, then the API.

    Args:
        schemas_path: the entity schema YAML (``paths.SCHEDULEHUB_SCHEMAS`` for the demo).
        db_path: a SQLite file that keeps what was ingested across restarts;
            None keeps everything in process memory.
        token: the bearer token every request but health and the contract needs.
        faults: faults to inject into API requests (none by default).
    """
    store = HubStore(load_schemas(schemas_path), db_path)
    injector = FaultInjector(faults or FaultPlan())
    asgi = FaultInjectionMiddleware(BearerAuthMiddleware(_asgi(store), token), injector)
    return ScheduleHubApp(asgi, store, injector)
