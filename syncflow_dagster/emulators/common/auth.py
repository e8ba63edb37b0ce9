"""Bearer-token auth as both contracts define it (health and the contract are public)."""

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from syncflow_dagster.emulators.common.problem import problem

PUBLIC_PATHS = frozenset({"/api/v1/health", "/openapi.yaml"})


class BearerAuthMiddleware:
    """Reject requests without ``Authorization: Bearer <token>`` with a 401 problem."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authorized (and public) requests on; answer the rest with 401."""
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected):
            detail = "missing bearer token" if not given else "invalid bearer token"
            response = problem(401, detail, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
