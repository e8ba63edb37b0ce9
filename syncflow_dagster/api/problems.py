"""Errors as RFC 9457 problem documents: status, title, detail (the shape the emulators use)."""

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiProblem(Exception):  # noqa: N818 - it is the answer, not a failure of the API
    """Raised anywhere in a request: answered as a problem document with this status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None

    def response(self, instance: str | None = None) -> Response:
        """The problem document."""
        return problem_response(
            self.status,
            self.detail,
            title=self.title,
            headers=self.headers,
            errors=self.errors,
            instance=instance,
        )


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    instance: str | None = None,
) -> Response:
    """A problem-document response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def not_found(what: str) -> ApiProblem:
    """404 naming what is missing."""
    return ApiProblem(404, what)


def conflict(detail: str) -> ApiProblem:
    """409: the request is understood but the present state forbids it."""
    return ApiProblem(409, detail)
