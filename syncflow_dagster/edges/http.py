"""What both HTTP clients share: auth headers, problem documents, error classes."""

import ssl
from functools import cache

import httpx
import orjson

from syncflow_dagster.edges.retry import TRANSIENT_STATUS, TransientHTTPError, retry_after_seconds
from syncflow_dagster.errors import PermanentError


class ApiError(PermanentError):
    """A permanent failure answered by a remote API; the message says what to fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """The API rejected the token (401)."""


class NotFoundError(ApiError):
    """The API does not know the entity or record (404)."""


def problem_detail(response: httpx.Response) -> str:
    """The detail (or title) of a problem document, else the start of the body."""
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or doc)[:500]
    return str(doc)[:200]


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~30 ms a client."""
    return ssl.create_default_context()


def check_response(service: str, token_setting: str, what: str, response: httpx.Response) -> None:
    """Raise the right error for a non-2xx response (transient ones are retried by the caller).

    Raises:
        TransientHTTPError: 429 / 502 / 503 / 504.
        AuthError: 401, naming the setting that holds the token.
        NotFoundError: 404.
        ApiError: any other failure status.
    """
    status = response.status_code
    if status < 400:
        return
    detail = problem_detail(response)
    if status in TRANSIENT_STATUS:
        raise TransientHTTPError(
            f"{service} {what}: HTTP {status} ({detail})", retry_after_seconds(response)
        )
    if status == 401:
        raise AuthError(
            f"{service} rejected the bearer token (HTTP 401: {detail}); check {token_setting}",
            status,
        )
    if status == 404:
        raise NotFoundError(f"{service} {what}: not found (HTTP 404: {detail})", status)
    raise ApiError(f"{service} {what}: HTTP {status}: {detail}", status)
