"""What both HTTP clients share: auth headers, problem documents, error classes, JSON bodies."""

import ssl
from collections.abc import Callable
from functools import cache
from typing import Any

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


#: The key of ``httpx.Response.extensions`` where the transport notes the request
#: (method and URL path, without the query), e.g. ``"GET /api/v1/entities"``.
REQUEST_EXTENSION = "syncflow_request"


def request_line(response: httpx.Response) -> str | None:
    """The method and URL path a response answers, when the transport noted them."""
    line = response.extensions.get(REQUEST_EXTENSION)
    return line if isinstance(line, str) else None


def body_start(response: httpx.Response, limit: int = 120) -> str:
    """The first characters of a body, on one line, for error messages."""
    text = " ".join(response.content[: limit * 4].decode("utf-8", errors="replace").split())
    return text[:limit] + ("…" if len(text) > limit else "")


def problem_detail(response: httpx.Response) -> str:
    """The detail (or title) of a problem document, else the start of the body."""
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return body_start(response, 200)
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or doc)[:500]
    return str(doc)[:200]


def json_body(
    service: str,
    what: str,
    response: httpx.Response,
    parse: Callable[[bytes], Any] = orjson.loads,
) -> Any:
    """The decoded body of a successful answer that must be JSON.

    ``parse`` decodes it (``orjson.loads`` unless the caller reads it another
    way, e.g. with polars into a schema).

    Raises:
        ApiError: when the body is not the JSON asked for (an HTML error page from
            a proxy, an empty body, …), naming the service, what was asked, the
            request, the content type and the start of the body.
    """
    try:
        return parse(response.content)
    except Exception as exc:  # any decoder's failure: the answer is not usable JSON
        asked = request_line(response)
        kind = response.headers.get("content-type") or "no content type"
        start = body_start(response)
        raise ApiError(
            f"{service} {what}"
            + (f" ({asked})" if asked else "")
            + f": expected a JSON body but got {kind} (HTTP {response.status_code}, "
            + (f"{len(response.content)} bytes starting {start!r}" if start else "empty body")
            + f", {type(exc).__name__}); check that {service.upper()}_URL points at the "
            f"{service} API itself, not a proxy or login page",
            response.status_code,
        ) from None


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~30 ms a client."""
    return ssl.create_default_context()


def check_response(service: str, token_setting: str, what: str, response: httpx.Response) -> None:
    """Raise the right error for a non-2xx response (transient ones are retried by the caller).

    Raises:
        TransientHTTPError: 408 / 429 / 502 / 503 / 504 (with Retry-After, service and request).
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
            f"{service} {what}: HTTP {status} ({detail})",
            retry_after_seconds(response),
            service=service,
            request=request_line(response),
        )
    if status == 401:
        raise AuthError(
            f"{service} rejected the bearer token (HTTP 401: {detail}); check {token_setting}",
            status,
        )
    if status == 404:
        raise NotFoundError(f"{service} {what}: not found (HTTP 404: {detail})", status)
    raise ApiError(f"{service} {what}: HTTP {status}: {detail}", status)
