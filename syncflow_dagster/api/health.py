"""Readiness: is each dependency up, how long it took to say so, and why not.

Five checks run side by side, each within HEALTH_TIMEOUT_SECONDS: the state
database (a query on ``sync_batches``), APISmith and ScheduleHub (an
authenticated entity list, so a refused token shows as down), the Dagster
webserver (``/server_info``) and the Dagster daemon (the heartbeats of every
required part, read through the webserver). Errors are the clients' own
messages with every secret masked.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from syncflow_dagster.api.context import SERVICE, ApiContext
from syncflow_dagster.api.models import Health, HealthCheck
from syncflow_dagster.edges.apismith import ApiSmithClient
from syncflow_dagster.edges.retry import RetryPolicy
from syncflow_dagster.edges.schedulehub import ScheduleHubClient
from syncflow_dagster.edges.state.tables import sync_batches
from syncflow_dagster.settings import mask_url

HEARTBEAT_STALE = timedelta(minutes=2)
"""A required daemon part whose last heartbeat is older than this counts as down."""

Check = Callable[[], None]


def _state_db(ctx: ApiContext) -> Check:
    def check() -> None:
        with ctx.store.engine.connect() as conn:
            conn.execute(select(sync_batches.c.id).limit(1)).all()

    return check


def _apismith(ctx: ApiContext) -> Check:
    s = ctx.settings

    def check() -> None:
        policy = RetryPolicy(max_retries=0)
        token = s.apismith_token.get_secret_value()
        with ApiSmithClient(s.apismith_url, token, policy, s.health_timeout_seconds) as client:
            client.entities()

    return check


def _schedulehub(ctx: ApiContext) -> Check:
    s = ctx.settings

    def check() -> None:
        policy = RetryPolicy(max_retries=0)
        token = s.schedulehub_token.get_secret_value()
        with ScheduleHubClient(
            s.schedulehub_url, token, policy, s.health_timeout_seconds, workers=1
        ) as client:
            client.entities()

    return check


def _daemon(ctx: ApiContext) -> Check:
    def check() -> None:
        parts = [p for p in ctx.dagster.daemon_health() if p.required]
        if not parts:
            raise RuntimeError("the instance reports no daemon (is `dagster-daemon run` up?)")
        now = datetime.now(UTC)
        down = []
        for part in parts:
            stale = part.last_heartbeat is None or now - part.last_heartbeat > HEARTBEAT_STALE
            if part.healthy is not True or stale:
                why = "; ".join(part.errors) or (
                    "no heartbeat"
                    if part.last_heartbeat is None
                    else f"last heartbeat {part.last_heartbeat:%Y-%m-%d %H:%M:%S} UTC"
                )
                down.append(f"{part.daemon_type} ({why})")
        if down:
            raise RuntimeError("daemon parts not healthy: " + ", ".join(down))

    return check


def _timed(ctx: ApiContext, target: str | None, check: Check) -> HealthCheck:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        message = ctx.redact(f"{type(exc).__name__}: {exc}")[:1000]
        return HealthCheck(
            status="down", latency_ms=round(elapsed, 1), target=target, error=message
        )
    elapsed = (time.perf_counter() - started) * 1000
    return HealthCheck(status="up", latency_ms=round(elapsed, 1), target=target)


def readiness(ctx: ApiContext) -> Health:
    """Every dependency checked at once; ``healthy`` only when all are up."""
    s = ctx.settings
    checks: dict[str, tuple[str | None, Check]] = {
        "state_db": (mask_url(s.state_db_url), _state_db(ctx)),
        "apismith": (mask_url(s.apismith_url), _apismith(ctx)),
        "schedulehub": (mask_url(s.schedulehub_url), _schedulehub(ctx)),
        "dagster_webserver": (mask_url(s.dagster_webserver_url), ctx.dagster.ping),
        "dagster_daemon": (mask_url(s.dagster_webserver_url) + "/graphql", _daemon(ctx)),
    }
    with ThreadPoolExecutor(len(checks), thread_name_prefix="health") as pool:
        futures = {
            name: pool.submit(_timed, ctx, target, check)
            for name, (target, check) in checks.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    healthy = all(r.status == "up" for r in results.values())
    return _health(ctx, "healthy" if healthy else "unhealthy", results)


def liveness(ctx: ApiContext) -> Health:
    """The process serves (no dependency asked)."""
    return _health(ctx, "healthy", {})


def _health(ctx: ApiContext, status: str, checks: dict[str, HealthCheck]) -> Health:
    return Health(
        status=status,
        service=SERVICE,
        version=ctx.version,
        environment=ctx.settings.app_env,
        timestamp=datetime.now(UTC),
        checks=checks,
    )
