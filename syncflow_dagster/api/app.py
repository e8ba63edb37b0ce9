"""The ASGI app: every endpoint, the OpenAPI document, the docs page, problems for every error."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.dagster import DagsterGateway, DagsterPort
from syncflow_dagster.api.docs import DOCS_HTML
from syncflow_dagster.api.endpoint import Endpoint, asgi
from syncflow_dagster.api.metrics import build_registry
from syncflow_dagster.api.openapi import openapi_document
from syncflow_dagster.api.problems import problem_response
from syncflow_dagster.api.routes import ENDPOINTS
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.settings import Settings, mask_url

access_log = logging.getLogger("syncflow_dagster.api.access")
log = logging.getLogger(__name__)


class AccessLog:
    """One INFO line per request: method, path, status, time, caller (never a header)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; log it when it is done."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            subject = scope.get("state", {}).get("subject")
            access_log.info(
                "%s %s %d %.1f ms%s",
                scope["method"],
                mask_url(target),
                status["code"],
                (time.monotonic() - started) * 1000,
                f" by {subject}" if subject else "",
            )


def _routes(endpoints: Sequence[Endpoint], ctx: ApiContext) -> list[Route]:
    """One route per path, dispatching by method (so 405 answers list every method)."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = asgi(e, ctx)
    routes = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        routes.append(Route(path, dispatch, methods=list(handlers)))
    return routes


def _json(doc: Any) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


def create_app(
    settings: Settings,
    *,
    store: StateStore | None = None,
    dagster: DagsterPort | None = None,
    endpoints: Sequence[Endpoint] = ENDPOINTS,
) -> Starlette:
    """The operations API over ``settings`` (a store or a Dagster stand-in may be given)."""
    ctx = ApiContext.from_settings(settings, store=store, dagster=dagster)
    ctx.registry = build_registry(ctx.store, settings.prometheus_multiproc_dir)
    document = openapi_document(endpoints, ctx.version)
    if not ctx.auth.configured:
        log.warning(
            "no API token is configured (API_READ_TOKENS, API_OPERATOR_TOKENS, API_JWT_SECRET): "
            "every endpoint but health answers 401"
        )

    async def openapi_json(request: Request) -> Response:
        return _json(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def docs_redirect(request: Request) -> Response:
        return RedirectResponse("/api/v1/docs")

    routes = _routes(endpoints, ctx)
    routes += [
        Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/v1/docs", docs, methods=["GET"]),
        Route("/docs", docs_redirect, methods=["GET"]),
    ]

    async def http_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = {
            404: f"no endpoint {request.url.path}; see /api/v1/docs",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return problem_response(
            exc.status_code, detail, headers=exc.headers, instance=request.url.path
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return problem_response(500, "unexpected error; the API's log has the details")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if isinstance(ctx.dagster, DagsterGateway):
            ctx.dagster.close()
        if store is None:
            ctx.store.dispose()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_problem, Exception: unexpected},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.add_middleware(AccessLog)
    return app
