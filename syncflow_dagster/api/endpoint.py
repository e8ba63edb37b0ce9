"""Endpoints declared once: the route, the checks, the parsing — and the OpenAPI document.

An :class:`Endpoint` names its method and path, the role it needs, the models
of its path and query parameters, its body and its answer. :func:`asgi` turns
it into a Starlette endpoint that authenticates, validates the input (422 with
every field at fault, never echoing a value), runs the handler on a worker
thread and writes the answer through its model; :mod:`openapi` describes the
same declarations.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from syncflow_dagster.api.auth import Principal, Role
from syncflow_dagster.api.context import ApiContext
from syncflow_dagster.api.dagster import DagsterRefusedError, DagsterUnavailableError
from syncflow_dagster.api.problems import ApiProblem, problem_response

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_BODY = 1_000_000
"""Largest request body accepted (bytes)."""


@dataclass
class Call:
    """One request as a handler sees it: who asks, and the parsed input."""

    principal: Principal | None
    path: BaseModel | None = None
    query: BaseModel | None = None
    body: BaseModel | None = None
    text: str | None = None
    """The body as YAML text (entity endpoints: a JSON body is turned into YAML)."""
    base_url: str = ""

    def path_as(self, model: type[M]) -> M:
        """The path parameters, as the endpoint declared them."""
        assert isinstance(self.path, model)
        return self.path

    def query_as(self, model: type[M]) -> M:
        """The query parameters, as the endpoint declared them."""
        assert isinstance(self.query, model)
        return self.query

    def body_as(self, model: type[M]) -> M:
        """The body, as the endpoint declared it."""
        assert isinstance(self.body, model)
        return self.body

    @property
    def subject(self) -> str:
        """Who asks (``anonymous`` on public endpoints)."""
        return self.principal.subject if self.principal else "anonymous"


@dataclass(frozen=True)
class Reply:
    """An answer with another status than the endpoint's default, or extra headers."""

    model: BaseModel
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiContext, Call], BaseModel | Reply | Response]


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    role: Role | None
    """None: public (health)."""
    response: type[BaseModel] | None
    status: int = 200
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    body_kind: str = "json"
    body_required: bool = True
    """False: an empty body means the body model's defaults."""
    """``json``: the body model as JSON; ``entity``: entity YAML (or the same as JSON)."""
    errors: tuple[int, ...] = ()
    """Problem statuses the handler may answer besides 401/403/422."""
    media_type: str = "application/json"
    description: str = ""
    also: tuple[tuple[int, type[BaseModel]], ...] = ()
    """Other answers that are not problems (e.g. health's 503 with the same body)."""

    @property
    def operation_id(self) -> str:
        """The area and the handler's name (unique in the document)."""
        return f"{self.tag}_{self.handler.__name__.lstrip('_')}"


def _loc(parts: tuple[Any, ...], where: str) -> str:
    return ".".join([where, *(str(p) for p in parts)])


def _invalid(exc: ValidationError, where: str) -> ApiProblem:
    errors = [
        {"loc": _loc(tuple(e["loc"]), where), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    summary = "; ".join(f"{e['loc']}: {e['message']}" for e in errors[:5])
    return ApiProblem(422, f"invalid {where}: {summary}", errors=errors)


def _parse(model: type[M] | None, data: Any, where: str) -> M | None:
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, where) from None


def _query_data(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        values = request.query_params.getlist(name)
        if not values:
            continue
        annotation = str(info.annotation)
        data[name] = values if annotation.startswith("list") else values[-1]
    return data


async def _body(request: Request, endpoint: Endpoint) -> tuple[BaseModel | None, str | None]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(
            413, f"the body is larger than {MAX_BODY} bytes", title="Content Too Large"
        )
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw.strip() and not endpoint.body_required and endpoint.body_model is not None:
        return endpoint.body_model(), None
    if not raw.strip():
        raise ApiProblem(
            422,
            "this endpoint needs a body",
            errors=[{"loc": "body", "message": "a body is required"}],
        )
    if endpoint.body_kind == "entity" and media in YAML_TYPES:
        try:
            return None, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiProblem(400, "the YAML body is not UTF-8 text") from None
    if media not in ("application/json", ""):
        accepted = "application/json" + (
            ", application/yaml" if endpoint.body_kind == "entity" else ""
        )
        raise ApiProblem(415, f"send the body as {accepted}", title="Unsupported Media Type")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiProblem(400, "the body is not valid JSON") from None
    if endpoint.body_kind == "json" and endpoint.body_model is not None:
        try:
            return endpoint.body_model.model_validate_json(raw), None
        except ValidationError as exc:
            raise _invalid(exc, "body") from None
    if endpoint.body_kind == "entity":
        if not isinstance(data, dict):
            raise ApiProblem(
                422,
                "the body must be one entity's configuration (a JSON object)",
                errors=[{"loc": "body", "message": "expected an object"}],
            )
        return None, yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return _parse(endpoint.body_model, data, "body"), None


def _render(endpoint: Endpoint, result: BaseModel | Reply | Response) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = endpoint.status, {}
    if isinstance(result, Reply):
        status, headers, result = result.status, result.headers, result.model
    return Response(
        result.model_dump_json().encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def problem_for(exc: Exception, ctx: ApiContext, path: str) -> Response:
    """The problem document for an exception a handler raised."""
    if isinstance(exc, ApiProblem):
        exc.detail = ctx.redact(exc.detail)
        return exc.response(path)
    if isinstance(exc, DagsterUnavailableError):
        return problem_response(502, ctx.redact(str(exc)), instance=path)
    if isinstance(exc, DagsterRefusedError):
        return problem_response(409, ctx.redact(str(exc)), instance=path)
    if isinstance(exc, OperationalError):
        log.error("state database error on %s: %s", path, exc.orig or exc)
        return problem_response(
            503, "the state database cannot be reached; see /api/v1/health", instance=path
        )
    log.exception("unexpected error on %s", path)
    return problem_response(
        500,
        f"unexpected error ({type(exc).__name__}); the API's log has the details",
        instance=path,
    )


def asgi(endpoint: Endpoint, ctx: ApiContext) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``endpoint``."""

    async def serve(request: Request) -> Response:
        started = time.monotonic()
        principal: Principal | None = None
        try:
            if endpoint.role is not None:
                principal = ctx.auth.authenticate(request.headers.get("authorization"))
                ctx.auth.require(principal, endpoint.role)
            request.state.subject = principal.subject if principal else None
            call = Call(principal, base_url=str(request.base_url).rstrip("/"))
            call.path = _parse(endpoint.path_model, dict(request.path_params), "path")
            if endpoint.query_model is not None:
                call.query = _parse(
                    endpoint.query_model, _query_data(request, endpoint.query_model), "query"
                )
            if endpoint.body_model is not None:
                call.body, call.text = await _body(request, endpoint)
            result = await run_in_threadpool(endpoint.handler, ctx, call)
            response = _render(endpoint, result)
        except Exception as exc:
            response = problem_for(exc, ctx, request.url.path)
        request.state.handled_ms = (time.monotonic() - started) * 1000
        return response

    serve.__name__ = endpoint.operation_id
    return serve
