"""The API's OpenAPI 3.1 document, built from the endpoint declarations and their models."""

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from syncflow_dagster.api.endpoint import Endpoint
from syncflow_dagster.api.models import Problem
from syncflow_dagster.api.problems import PROBLEM_MEDIA_TYPE, TITLES

REF = "#/components/schemas/{model}"
DESCRIPTION = """\
The operations API of SyncFlow: syncs launched, watched and stopped through Dagster,
the entity configuration, the dead-letter queue and the waiting children, the
background schedules, Prometheus metrics and a health check of every dependency.

Every operation except the health checks needs `Authorization: Bearer <token>`:
a static token (API_READ_TOKENS, API_OPERATOR_TOKENS) or a JWT signed with HS256
by API_JWT_SECRET carrying `sub`, `exp` and `role` (`read` or `operator`).
Operations that launch, stop or change anything need the `operator` role.
Errors are RFC 9457 problem documents.
"""


def _schemas(endpoints: Sequence[Endpoint]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for e in endpoints:
        if e.response is not None:
            wanted.append((e.response, "serialization"))
        for _, model in e.also:
            wanted.append((model, "serialization"))
        if e.body_model is not None:
            wanted.append((e.body_model, "validation"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    return dict(refs), dict(top.get("$defs", {}))


def _parameters(model: type[BaseModel] | None, where: Literal["path", "query"]) -> list[Any]:
    if model is None:
        return []
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    out = []
    for name, given in schema.get("properties", {}).items():
        prop = {k: v for k, v in given.items() if k != "title"}
        description = prop.pop("description", None)
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        if prop.get("type") == "array":
            param["style"], param["explode"] = "form", True
        out.append(param)
    return out


def _problem(status: int, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": refs[(Problem, "serialization")]}},
    }


def _operation(e: Endpoint, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": e.operation_id,
        "summary": e.summary,
        "tags": [e.tag],
        "security": [] if e.role is None else [{"bearer": []}],
    }
    description = e.description or (e.handler.__doc__ or "").strip()
    if e.role is not None:
        description += f"\n\nNeeds the `{e.role}` role."
    op["description"] = description.strip()
    if e.role is not None:
        op["x-syncflow-role"] = e.role
    parameters = _parameters(e.path_model, "path") + _parameters(e.query_model, "query")
    if parameters:
        op["parameters"] = parameters
    if e.body_model is not None:
        if e.body_kind == "entity":
            config = refs[(e.body_model, "validation")]
            op["requestBody"] = {
                "required": True,
                "description": "one entity's configuration, as the YAML file (or the same as JSON)",
                "content": {
                    "application/yaml": {"schema": config},
                    "application/json": {"schema": config},
                },
            }
        else:
            op["requestBody"] = {
                "required": e.body_required,
                "content": {"application/json": {"schema": refs[(e.body_model, "validation")]}},
            }
    responses: dict[str, Any] = {}
    if e.media_type != "application/json":
        responses[str(e.status)] = {
            "description": "OK",
            "content": {e.media_type.split(";")[0]: {"schema": {"type": "string"}}},
        }
    elif e.response is None:
        responses[str(e.status)] = {"description": "OK"}
    else:
        responses[str(e.status)] = {
            "description": "OK"
            if e.status == 200
            else "Accepted"
            if e.status == 202
            else "Created",
            "content": {"application/json": {"schema": refs[(e.response, "serialization")]}},
        }
    for status, model in e.also:
        responses[str(status)] = {
            "description": TITLES.get(status, "Other"),
            "content": {"application/json": {"schema": refs[(model, "serialization")]}},
        }
    statuses = set(e.errors)
    if e.role is not None:
        statuses |= {401, 403}
    if e.path_model or e.query_model or e.body_model:
        statuses.add(422)
    if e.body_model is not None:
        statuses |= {400, 413, 415}
    for status in sorted(statuses):
        responses[str(status)] = _problem(status, refs)
    op["responses"] = responses
    return op


def openapi_document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``."""
    refs, schemas = _schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SyncFlow operations API",
            "version": version,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "service", "description": "what answers, its health, its settings"},
            {"name": "sync", "description": "runs launched, watched and stopped through Dagster"},
            {"name": "entities", "description": "the entity configuration (YAML files)"},
            {
                "name": "monitoring",
                "description": "metrics, figures, dead letters, waiting children",
            },
            {"name": "schedules", "description": "background syncs of big tables"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "a static token, or a JWT (HS256) with sub, exp and role",
                }
            },
        },
    }
