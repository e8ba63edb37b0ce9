"""The APISmith HTTP app: the contract's read API plus an admin API to mutate the data.

``create_app(dataset, token, faults)`` gives an ASGI app. Bearer auth guards everything
but health and the contract; faults (common/faults.py) hit only ``/api/v1/`` requests, so
the admin API under ``/admin/`` is never fault-injected.
"""

import re
from collections.abc import Callable

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from syncflow_dagster.emulators.apismith import cursor
from syncflow_dagster.emulators.apismith.admin import admin_routes
from syncflow_dagster.emulators.apismith.dataset import ErpDataset
from syncflow_dagster.emulators.apismith.schema import ENTITIES, Entity
from syncflow_dagster.emulators.apismith.store import (
    join_lines,
    json_array_items,
    key_at,
    key_start,
    ndjson_page,
    record_start,
)
from syncflow_dagster.emulators.common.auth import BearerAuthMiddleware
from syncflow_dagster.emulators.common.faults import (
    FaultInjectionMiddleware,
    FaultInjector,
    FaultPlan,
)
from syncflow_dagster.emulators.common.problem import problem
from syncflow_dagster.paths import CONTRACTS_DIR

CONTRACT = CONTRACTS_DIR / "apismith.openapi.yaml"
NDJSON = "application/x-ndjson"
MAX_LIMIT = 50_000
DEFAULT_LIMIT = 1000
_INTEGER = re.compile(r"[+-]?\d+")


class BadRequestError(Exception):
    """A request parameter the contract does not allow; answered with a 400 problem."""


class UnknownEntityError(Exception):
    """An entity name the ERP does not expose; answered with a 404 problem."""


def _entity(request: Request) -> Entity:
    name = request.path_params["entity"]
    entity = ENTITIES.get(name)
    if entity is None:
        raise UnknownEntityError(f"unknown entity {name!r}")
    return entity


def _int_param(request: Request, name: str, minimum: int, maximum: int | None = None) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if not _INTEGER.fullmatch(text):
        raise BadRequestError(f"{name} must be an integer, got {text!r}")
    if len(text.lstrip("+-").lstrip("0")) > 30:  # beyond any rowversion or limit: saturate
        value = -(10**30) if text.startswith("-") else 10**30
    else:
        value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        upper = f"..{maximum}" if maximum is not None else " or more"
        raise BadRequestError(f"{name} must be {minimum}{upper}, got {value}")
    return value


def _cursor_text(request: Request) -> str | None:
    text = request.query_params.get("cursor")
    return text or None


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


class _Api:
    """Endpoint handlers over one dataset."""

    def __init__(self, dataset: ErpDataset) -> None:
        self.dataset = dataset

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def contract(self, request: Request) -> Response:
        return Response(CONTRACT.read_bytes(), media_type="application/yaml")

    async def entities(self, request: Request) -> Response:
        return _json({"entities": [e.describe() for e in ENTITIES.values()]})

    async def records(self, request: Request) -> Response:
        entity = _entity(request)
        limit = _int_param(request, "limit", 1, MAX_LIMIT)
        limit = DEFAULT_LIMIT if limit is None else limit
        since = _int_param(request, "since_rowversion", 0)
        text = _cursor_text(request)
        try:
            after = cursor.decode_records(entity, text) if text is not None else None
        except cursor.CursorError as exc:
            raise BadRequestError(str(exc)) from None
        view, _ = self.dataset.views(entity.name)
        start = record_start(view, since, after)
        stop = min(start + limit, view.size)
        next_cursor = None
        if start < stop < view.size:
            last = stop - 1
            next_cursor = cursor.encode_records(entity, int(view.rv[last]), key_at(view, last))
        if NDJSON in request.headers.get("accept", ""):
            headers = {"X-Next-Cursor": next_cursor} if next_cursor else None
            return Response(ndjson_page(view, start, stop), media_type=NDJSON, headers=headers)
        watermark = int(view.rv[stop - 1]) if stop > start else None
        body = b"".join(
            (
                b'{"entity":',
                orjson.dumps(entity.name),
                b',"records":[',
                json_array_items(view, start, stop),
                b'],"next_cursor":',
                orjson.dumps(next_cursor),
                b',"watermark":',
                orjson.dumps(watermark),
                b"}",
            )
        )
        return Response(body, media_type="application/json")

    async def keys(self, request: Request) -> Response:
        entity = _entity(request)
        limit = _int_param(request, "limit", 1, MAX_LIMIT)
        limit = DEFAULT_LIMIT if limit is None else limit
        text = _cursor_text(request)
        try:
            after = cursor.decode_keys(entity, text) if text is not None else None
        except cursor.CursorError as exc:
            raise BadRequestError(str(exc)) from None
        _, view = self.dataset.views(entity.name)
        start = key_start(view, after)
        stop = min(start + limit, view.size)
        next_cursor = None
        if start < stop < view.size:
            next_cursor = cursor.encode_keys(entity, key_at(view, stop - 1))
        body = b"".join(
            (
                b'{"entity":',
                orjson.dumps(entity.name),
                b',"keys":[',
                join_lines(view.json, start, stop, ","),
                b'],"next_cursor":',
                orjson.dumps(next_cursor),
                b"}",
            )
        )
        return Response(body, media_type="application/json")

    async def count(self, request: Request) -> Response:
        entity = _entity(request)
        since = _int_param(request, "since_rowversion", 0)
        view, _ = self.dataset.views(entity.name)
        start = record_start(view, since, None)
        count = view.size - start
        highest = int(view.rv[view.size - 1]) if count else None
        return _json({"entity": entity.name, "count": count, "max_rowversion": highest})


async def _bad_request(request: Request, exc: Exception) -> Response:
    return problem(400, str(exc))


async def _unknown_entity(request: Request, exc: Exception) -> Response:
    return problem(404, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return problem(500, f"internal error: {type(exc).__name__}")


class ApiSmithApp:
    """The ASGI app; ``dataset`` and ``injector`` stay reachable for tests and fixtures."""

    def __init__(
        self,
        dataset: ErpDataset,
        token: str,
        faults: FaultPlan | None = None,
        on_change: Callable[[ErpDataset], None] | None = None,
    ) -> None:
        self.dataset = dataset
        self.injector = FaultInjector(faults or FaultPlan())
        api = _Api(dataset)
        base = "/api/v1"
        routes = [
            Route(f"{base}/health", api.health, methods=["GET"]),
            Route("/openapi.yaml", api.contract, methods=["GET"]),
            Route(f"{base}/entities", api.entities, methods=["GET"]),
            Route(f"{base}/entities/{{entity}}/records", api.records, methods=["GET"]),
            Route(f"{base}/entities/{{entity}}/keys", api.keys, methods=["GET"]),
            Route(f"{base}/entities/{{entity}}/count", api.count, methods=["GET"]),
            *admin_routes(dataset, on_change),
        ]
        router = Starlette(
            routes=routes,
            exception_handlers={
                BadRequestError: _bad_request,
                UnknownEntityError: _unknown_entity,
                HTTPException: _http_error,
                Exception: _server_error,
            },
        )
        self._app = BearerAuthMiddleware(FaultInjectionMiddleware(router, self.injector), token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI request."""
        await self._app(scope, receive, send)


def create_app(
    dataset: ErpDataset,
    token: str,
    faults: FaultPlan | None = None,
    on_change: Callable[[ErpDataset], None] | None = None,
) -> ApiSmithApp:
    """The APISmith emulator over ``dataset``, guarded by ``token``, injecting ``faults``.

    ``on_change(dataset)`` is called after every change made through the admin API
    (the local world saves its ERP there).
    """
    return ApiSmithApp(dataset, token, faults, on_change)
