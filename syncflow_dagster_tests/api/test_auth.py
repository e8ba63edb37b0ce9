"""Every endpoint but health needs a token; writes need the operator role; no token leaks."""

import io
import logging
import re
import time
from typing import Any

import jwt
import pytest

from syncflow_dagster.api.routes import ENDPOINTS
from syncflow_dagster.logs import setup_logging
from syncflow_dagster_tests.api.conftest import JWT_SECRET, OPERATOR_TOKEN, READ_TOKEN, Api

PLACEHOLDERS = {"run": "items", "name": "items", "id": "1", "entity": "items"}


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], template)


def _call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    return api.client.request(method, path, headers=headers, json={"entity": "items"})


def _jwt(
    role: object = "operator", sub: str = "bob", exp: float | None = None, **extra: Any
) -> str:
    claims: dict[str, Any] = {"sub": sub, "exp": exp if exp is not None else time.time() + 600}
    if role is not None:
        claims["role"] = role
    return jwt.encode({**claims, **extra}, JWT_SECRET, algorithm="HS256")


PROTECTED = [e for e in ENDPOINTS if e.role is not None]
WRITES = [e for e in ENDPOINTS if e.role == "operator"]


def test_the_document_lists_every_area_and_only_health_is_public(api: Api) -> None:
    doc = api.client.get("/api/v1/openapi.json").json()
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(ENDPOINTS)
    public = sorted(
        path for path, ops in doc["paths"].items() for op in ops.values() if op["security"] == []
    )
    assert public == ["/api/v1/health", "/api/v1/health/live"]
    assert len(PROTECTED) == len(ENDPOINTS) - 2
    assert {e.method for e in WRITES} == {"POST", "PUT", "DELETE"}


@pytest.mark.parametrize("endpoint", PROTECTED, ids=lambda e: f"{e.method} {e.path}")
def test_no_token_is_401_as_a_problem(api: Api, endpoint: Any) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-known-token-123"},
        {"Authorization": "Basic x"},
    ):
        answer = _call(api, endpoint.method, _path(endpoint.path), headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", WRITES, ids=lambda e: f"{e.method} {e.path}")
def test_a_read_token_on_a_write_endpoint_is_403(api: Api, endpoint: Any) -> None:
    for token in (READ_TOKEN, _jwt("read")):
        answer = _call(
            api, endpoint.method, _path(endpoint.path), {"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "operator role" in answer.json()["detail"]
    assert api.dagster.launched == []


def test_health_needs_no_token(api: Api) -> None:
    assert api.client.get("/api/v1/health/live").status_code == 200
    assert api.client.get("/api/v1/health").status_code in (200, 503)


def test_jwt_roles_expiry_and_signature(api: Api) -> None:
    def status(token: str, path: str = "/api/v1/entities") -> int:
        return int(api.get(path, token=token).status_code)

    assert status(_jwt("read")) == 200
    assert status(_jwt(["read", "operator"])) == 200
    assert status(_jwt("operator", exp=time.time() - 3600)) == 401
    assert status(_jwt("admin")) == 403  # no SyncFlow role
    assert status(_jwt(None)) == 403
    forged = jwt.encode(
        {"sub": "eve", "role": "operator", "exp": time.time() + 60},
        "another-secret-of-enough-length-0123456789",
        algorithm="HS256",
    )
    assert status(forged) == 401
    unsigned = jwt.encode({"sub": "eve", "role": "operator", "exp": time.time() + 60}, None, "none")
    assert status(unsigned) == 401
    no_exp = jwt.encode({"sub": "eve", "role": "operator"}, JWT_SECRET, algorithm="HS256")
    assert status(no_exp) == 401
    # The operator's JWT launches, and the run carries its subject, never the token.
    answer = api.post(
        "/api/v1/sync/start", token=_jwt("operator", sub="bob"), json={"entity": "items"}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["launched_by"] == "bob"
    [(job, _, tags)] = api.dagster.launched
    assert (job, tags["syncflow/launched_by"], tags["syncflow/trigger"]) == (
        "sync_items_job",
        "bob",
        "api",
    )


def test_no_token_appears_in_a_log_line_or_an_answer(api: Api) -> None:
    out = io.StringIO()
    handler = setup_logging(api.settings, out)
    logging.getLogger("syncflow_dagster").setLevel(logging.DEBUG)
    bodies = []
    tokens = [READ_TOKEN, OPERATOR_TOKEN, _jwt("operator"), _jwt("read")]
    try:
        for endpoint in ENDPOINTS:
            for token in [*tokens, "wrong-token-0123456789"]:
                answer = _call(
                    api, endpoint.method, _path(endpoint.path), {"Authorization": f"Bearer {token}"}
                )
                bodies.append(answer.text + str(dict(answer.headers)))
        bodies.append(api.client.get("/api/v1/openapi.json").text)
        bodies.append(api.client.get("/api/v1/docs").text)
    finally:
        logging.getLogger().removeHandler(handler)
    logged = out.getvalue()
    assert "GET /api/v1/entities 200" in logged  # the access log is there
    assert "by alice" in logged
    for secret in [*tokens, JWT_SECRET, "wrong-token-0123456789"]:
        assert secret not in logged
        assert not any(secret in body for body in bodies)
