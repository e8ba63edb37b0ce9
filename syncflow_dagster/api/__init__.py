"""The operations API: SyncFlow's REST endpoints over Dagster and the state store.

``syncflow api`` serves :func:`syncflow_dagster.api.app.create_app` with uvicorn.
Dagster stays the engine: syncs are runs launched through the webserver's
GraphQL API; the state store answers what happened. docs/API.md shows every
endpoint with curl.
"""
