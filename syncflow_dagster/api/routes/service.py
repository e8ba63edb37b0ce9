"""``GET /``, health (liveness and readiness) and metadata."""

from datetime import UTC, datetime

from syncflow_dagster.api.context import API_VERSION, SERVICE, ApiContext
from syncflow_dagster.api.endpoint import Call, Endpoint, Reply
from syncflow_dagster.api.health import liveness, readiness
from syncflow_dagster.api.models import Health, Metadata, ServiceInfo
from syncflow_dagster.orchestration.factories.sync_job import retry_job_name, sync_job_name
from syncflow_dagster.orchestration.resolve import JOB_NAME as RESOLVE_JOB
from syncflow_dagster.settings import mask_url


def root(ctx: ApiContext, call: Call) -> ServiceInfo:
    """The service, and where its documents and endpoints are."""
    return ServiceInfo(
        service=SERVICE,
        version=ctx.version,
        environment=ctx.settings.app_env,
        links={
            "docs": "/api/v1/docs",
            "openapi": "/api/v1/openapi.json",
            "health": "/api/v1/health",
            "metadata": "/api/v1/metadata",
            "metrics": "/api/v1/metrics",
            "dagster": mask_url(ctx.settings.dagster_webserver_url),
        },
    )


def health(ctx: ApiContext, call: Call) -> Reply:
    """Readiness: the state database, APISmith, ScheduleHub, the Dagster webserver and daemon.

    200 when every dependency is up, 503 when one is down; each check has its
    latency and, when down, its error.
    """
    report = readiness(ctx)
    return Reply(report, 200 if report.status == "healthy" else 503)


def live(ctx: ApiContext, call: Call) -> Health:
    """Liveness: the API process answers (no dependency is asked)."""
    return liveness(ctx)


def metadata(ctx: ApiContext, call: Call) -> Metadata:
    """The service, its entities and jobs, its settings (never a secret)."""
    s = ctx.settings
    catalog = ctx.catalog()
    names = catalog.parent_first()
    jobs = [sync_job_name(n) for n in names] + ["sync_all_job"]
    jobs += [retry_job_name(n) for n in names] + [RESOLVE_JOB]
    now = datetime.now(UTC)
    return Metadata(
        service=SERVICE,
        version=ctx.version,
        api_version=API_VERSION,
        environment=s.app_env,
        started_at=ctx.started_at,
        uptime_seconds=round((now - ctx.started_at).total_seconds(), 3),
        dagster_webserver=mask_url(s.dagster_webserver_url),
        entities=names,
        jobs=jobs,
        auth=ctx.auth.describe(),
        settings={
            "apismith_url": mask_url(s.apismith_url),
            "schedulehub_url": mask_url(s.schedulehub_url),
            "state_db": mask_url(s.state_db_url),
            "entities_dir": str(s.entities_dir),
            "erp_timezone": s.erp_timezone,
            "default_batch_size": s.default_batch_size,
            "sync_worker_threads": s.sync_worker_threads,
            "max_retries": s.max_retries,
            "retry_delay_seconds": s.retry_delay_seconds,
            "max_retry_delay_seconds": s.max_retry_delay_seconds,
            "retry_max_attempts": s.retry_max_attempts,
            "background_sync_enabled": s.background_sync_enabled,
            "background_sync_window": f"{s.background_sync_window_start:%H:%M:%S}–"
            f"{s.background_sync_window_end:%H:%M:%S}",
            "log_level": "DEBUG" if s.debug else s.log_level,
        },
    )


ENDPOINTS = [
    Endpoint("GET", "/", root, "The service and its links", "service", "read", ServiceInfo),
    Endpoint(
        "GET",
        "/api/v1/health",
        health,
        "Readiness of every dependency",
        "service",
        None,
        Health,
        also=((503, Health),),
    ),
    Endpoint("GET", "/api/v1/health/live", live, "Liveness", "service", None, Health),
    Endpoint(
        "GET",
        "/api/v1/metadata",
        metadata,
        "Service metadata",
        "service",
        "read",
        Metadata,
        errors=(500,),
    ),
]
