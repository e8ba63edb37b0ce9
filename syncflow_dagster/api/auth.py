"""Who may call the API: bearer tokens, static or JWT, and two roles.

* ``read`` lists and reads (status, history, entities, metrics, stats, dead letters).
* ``operator`` also launches, stops and retries syncs and changes the entity
  configuration and the background schedules.

A token is either one of the static tokens of ``API_READ_TOKENS`` /
``API_OPERATOR_TOKENS`` (``TOKEN`` or ``NAME:TOKEN`` entries; the name is who
holds it), or a JWT signed with HS256 by ``API_JWT_SECRET`` that carries ``sub``
(who), ``exp`` (until when) and a ``role`` claim (``read`` or ``operator``; a
list in ``roles`` works too), checked against ``API_JWT_ISSUER`` /
``API_JWT_AUDIENCE`` when those are set. Tokens are compared in constant time
and never logged, echoed or put into a run: runs carry the subject only.
"""

import hmac
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from syncflow_dagster.api.problems import ApiProblem
from syncflow_dagster.settings import Settings, api_token_entries

Role = Literal["read", "operator"]
ROLES: tuple[Role, ...] = ("read", "operator")
_RANK = {"read": 1, "operator": 2}
LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp`` / ``nbf`` / ``iat``."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: who, with which role, and how it proved it."""

    subject: str
    role: Role
    via: Literal["static", "jwt"]

    def may(self, needed: Role) -> bool:
        """Whether this caller's role covers ``needed``."""
        return _RANK[self.role] >= _RANK[needed]


def _unauthorized(detail: str, error: str = "invalid_token") -> ApiProblem:
    return ApiProblem(
        401,
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="syncflow", error="{error}"'},
    )


class Authenticator:
    """Checks bearer tokens against the settings."""

    def __init__(self, settings: Settings) -> None:
        self._static: list[tuple[bytes, Principal]] = []
        for role, value in (
            ("read", settings.api_read_tokens),
            ("operator", settings.api_operator_tokens),
        ):
            for name, token in api_token_entries(value):
                who = name or f"{role}-token"
                self._static.append((token.encode(), Principal(who, role, "static")))  # type: ignore[arg-type]
        secret = settings.api_jwt_secret
        self._jwt_key = secret.get_secret_value() if secret is not None else None
        self._issuer = settings.api_jwt_issuer
        self._audience = settings.api_jwt_audience

    @property
    def configured(self) -> bool:
        """Whether any way to authenticate is set up (else every protected call is 401)."""
        return bool(self._static) or self._jwt_key is not None

    def describe(self) -> dict[str, Any]:
        """How callers authenticate (counts and flags, never a token)."""
        return {
            "static_read_tokens": sum(1 for _, p in self._static if p.role == "read"),
            "static_operator_tokens": sum(1 for _, p in self._static if p.role == "operator"),
            "jwt": self._jwt_key is not None,
        }

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller an ``Authorization`` header proves.

        Raises:
            ApiProblem: 401 when the header is missing, malformed, or the token is not valid.
        """
        if not authorization:
            raise _unauthorized(
                "this endpoint needs a bearer token (Authorization: Bearer <token>); "
                "see /api/v1/docs",
                "invalid_request",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "the Authorization header must read 'Bearer <token>'", "invalid_request"
            )
        found = self._static_principal(token)
        if found is not None:
            return found
        if self._jwt_key is not None and token.count(".") == 2:
            return self._jwt_principal(token)
        raise _unauthorized("the bearer token is not valid")

    def require(self, principal: Principal, needed: Role) -> None:
        """Raise 403 unless ``principal`` may do what needs ``needed``."""
        if not principal.may(needed):
            raise ApiProblem(
                403,
                f"this endpoint needs the {needed} role; the token of "
                f"'{principal.subject}' has the {principal.role} role",
            )

    def _static_principal(self, token: str) -> Principal | None:
        given = token.encode()
        found = None
        for known, principal in self._static:  # every entry compared: no early exit
            if hmac.compare_digest(given, known) and found is None:
                found = principal
        return found

    def _jwt_principal(self, token: str) -> Principal:
        assert self._jwt_key is not None
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=["HS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the bearer token (JWT) has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the bearer token (JWT) lacks the '{exc.claim}' claim") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the bearer token (JWT) has another issuer") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("the bearer token (JWT) is for another audience") from None
        except jwt.InvalidTokenError:
            raise _unauthorized(
                "the bearer token (JWT) is not valid (signature, algorithm or format)"
            ) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise _unauthorized("the bearer token (JWT) names no subject ('sub')")
        role = _role_of(claims)
        if role is None:
            raise ApiProblem(
                403,
                f"the token of '{subject}' carries no SyncFlow role: its 'role' claim must be "
                "'read' or 'operator'",
            )
        return Principal(subject.strip()[:200], role, "jwt")


def _role_of(claims: dict[str, Any]) -> Role | None:
    """The strongest known role among the ``role`` and ``roles`` claims."""
    named: list[Any] = []
    for key in ("role", "roles"):
        value = claims.get(key)
        if isinstance(value, str):
            named.append(value)
        elif isinstance(value, list):
            named.extend(value)
    known = [r for r in ROLES if r in named]
    return known[-1] if known else None  # ROLES go from weakest to strongest
