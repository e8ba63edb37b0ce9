"""Fault injection for the emulators: by rate and by a deterministic schedule.

A plan is written as a comma-separated spec, for example::

    429=0.05,503=0.02,drop=0.01,lost=0.01,latency=0.1:250,retry_after=1,seed=7,at=3:429;5:lost

* ``429`` / ``503`` — answer with that status (429 carries ``Retry-After``);
* ``drop`` — let the application handle the request, then close the
  connection mid-response (headers and part of the body sent);
* ``lost`` — let the application handle the request (a batch *is* applied),
  then close the connection before any of the body is sent;
* ``latency=RATE:MS`` — add MS milliseconds before handling;
* ``at=N:KIND;M:KIND`` — the N-th eligible request (1-based) gets KIND,
  whatever the rates say: the deterministic schedule tests rely on;
* ``seed`` — seeds the random draws, so a rate-based plan is reproducible;
* ``only=PREFIX`` — only requests whose path starts with PREFIX get faults
  (e.g. ``only=/api/v1/ingest``: every answer to an ingest lost, reads fine).

Only API requests are eligible (paths under ``/api/v1/`` other than health).
"""

import asyncio
import random
from dataclasses import dataclass, field
from typing import Literal, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncflow_dagster.emulators.common.problem import problem

FaultKind = Literal["429", "503", "drop", "lost", "latency"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "503", "drop", "lost", "latency")


class FaultSpecError(ValueError):
    """A fault spec that cannot be read; the message names the part."""


class InjectedFault(Exception):  # noqa: N818 - it is not an error of the server
    """Raised inside the ASGI app to make the server abort the connection."""


@dataclass(frozen=True)
class FaultPlan:
    """What faults to inject, by rate and by schedule."""

    rates: dict[str, float] = field(default_factory=dict)
    latency_ms: int = 200
    retry_after: int = 1
    seed: int = 0
    schedule: dict[int, str] = field(default_factory=dict)
    only: str = ""

    @property
    def active(self) -> bool:
        """Whether the plan injects anything at all."""
        return bool(self.schedule) or any(r > 0 for r in self.rates.values())

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan":
        """Read a plan from its spec string (empty or None: no faults)."""
        if not spec or not spec.strip():
            return cls()
        rates: dict[str, float] = {}
        latency_ms = 200
        retry_after = 1
        seed = 0
        schedule: dict[int, str] = {}
        only = ""
        for item in spec.split(","):
            part = item.strip()
            if not part:
                continue
            if "=" not in part:
                raise FaultSpecError(f"fault spec part {part!r} is not NAME=VALUE")
            name, value = (s.strip() for s in part.split("=", 1))
            try:
                if name == "latency":
                    rate_s, _, ms_s = value.partition(":")
                    rates["latency"] = float(rate_s)
                    if ms_s:
                        latency_ms = int(ms_s)
                elif name in FAULT_KINDS:
                    rates[name] = float(value)
                elif name == "retry_after":
                    retry_after = int(value)
                elif name == "seed":
                    seed = int(value)
                elif name == "only":
                    only = value
                elif name == "at":
                    for entry in value.split(";"):
                        n_s, _, kind = entry.partition(":")
                        if kind not in FAULT_KINDS:
                            raise FaultSpecError(f"unknown fault kind {kind!r} in {part!r}")
                        schedule[int(n_s)] = kind
                else:
                    raise FaultSpecError(f"unknown fault spec name {name!r}")
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"fault spec part {part!r}: {exc}") from None
        for name, rate in rates.items():
            if not 0 <= rate <= 1:
                raise FaultSpecError(f"fault rate {name}={rate} is not between 0 and 1")
        return cls(rates, latency_ms, retry_after, seed, schedule, only)


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self.count = 0
        self.injected: list[tuple[int, str, str]] = []

    def next_fault(self, path: str) -> str | None:
        """The fault for the next eligible request, recorded in ``injected``."""
        if self.plan.only and not path.startswith(self.plan.only):
            return None
        self.count += 1
        kind = self.plan.schedule.get(self.count)
        if kind is None:
            for name in FAULT_KINDS:
                rate = self.plan.rates.get(name, 0.0)
                if rate > 0 and self._rng.random() < rate:
                    kind = name
                    break
        if kind is not None:
            self.injected.append((self.count, kind, path))
        return kind


def _eligible(path: str) -> bool:
    return path.startswith("/api/v1/") and path != "/api/v1/health"


class FaultInjectionMiddleware:
    """ASGI middleware that injects the faults of a plan into API requests."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Inject the next fault (if any) into an API request."""
        if scope["type"] != "http" or not _eligible(scope["path"]):
            await self.app(scope, receive, send)
            return
        kind = self.injector.next_fault(scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "latency":
            await asyncio.sleep(self.injector.plan.latency_ms / 1000)
            await self.app(scope, receive, send)
        elif kind in ("429", "503"):
            status = int(kind)
            headers = (
                {"Retry-After": str(self.injector.plan.retry_after)} if status == 429 else None
            )
            detail = (
                "injected fault: rate limited" if status == 429 else "injected fault: unavailable"
            )
            await problem(status, detail, headers=headers)(scope, receive, send)
        else:
            await self._truncate(scope, receive, send, keep_body=(kind == "drop"))

    async def _truncate(self, scope: Scope, receive: Receive, send: Send, keep_body: bool) -> None:
        """Run the app to completion, then send only part of its response and abort."""
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:
            raise InjectedFault("no response to truncate")
        body = b"".join(
            cast(bytes, m.get("body", b"")) for m in messages if m["type"] == "http.response.body"
        )
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body) + 1).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        if keep_body and body:
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
        raise InjectedFault(
            f"injected fault: connection closed ({'drop' if keep_body else 'lost'})"
        )
