"""`syncflow api`: the operations API (REST, Prometheus metrics, health) next to the Dagster UI.

    syncflow api [--host HOST] [--port PORT]

Serves :func:`syncflow_dagster.api.app.create_app` with uvicorn on API_HOST:API_PORT
(default 127.0.0.1:8008). Syncs are launched through the Dagster webserver at
DAGSTER_WEBSERVER_URL (``make ui`` / ``dagster dev``), which must be running for
the sync endpoints; the docs are at /api/v1/docs.
"""

import argparse
import contextlib
import logging
import sys

import uvicorn

from syncflow_dagster.api.app import create_app
from syncflow_dagster.logs import setup_logging
from syncflow_dagster.settings import SettingsError, load_settings, mask_url

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--host", help="interface to listen on (default: API_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: API_PORT, 8008)")


def run(args: argparse.Namespace) -> int:
    """Serve the API until interrupted."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"syncflow api: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    if settings.prometheus_multiproc_dir is not None:
        settings.prometheus_multiproc_dir.mkdir(parents=True, exist_ok=True)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    app = create_app(settings)
    log.info(
        "SyncFlow operations API on http://%s:%d (docs: /api/v1/docs), Dagster at %s",
        host,
        port,
        mask_url(settings.dagster_webserver_url),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    return 0
