"""Schemathesis against the API's own OpenAPI document, over loopback HTTP.

The API serves a state store with batches, dead letters and waiting children,
both emulators (so health is up) and a Dagster stand-in. Every operation is
called with generated requests, valid and invalid, with an operator token;
every answer must match the document (status, media type, body schema) and
no answer may be a server error.

Where the API checks more than a schema can say, a schema-valid request may
get 422: an entity's YAML is checked exactly as the loader checks it (columns
exist, rules fit the types, parents are configured), a partition must be a
night of the jobs, a retry needs ids or a filter, ``since`` must be an age or
a date. For those operations the positive-data-acceptance check gives way to
asserting that such a 422 is a problem document saying why.

The other way round, an entity body is accepted wherever the loader accepts
the same YAML file, and the loader reads values as a YAML author writes them
(``0`` for false, ``"5"`` for 5): the negative-data check does not apply to
the entity bodies, since refusing what Dagster would load is not the API's call.
"""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from syncflow_dagster.api.app import create_app
from syncflow_dagster.api.context import service_version
from syncflow_dagster.api.openapi import openapi_document
from syncflow_dagster.api.routes import ENDPOINTS
from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.emulators.apismith import DatasetSpec
from syncflow_dagster.emulators.common.serving import serve_in_thread
from syncflow_dagster.testing.apismith import running_apismith
from syncflow_dagster.testing.schedulehub import running_schedulehub
from syncflow_dagster_tests.api.conftest import OPERATOR_TOKEN, FakeDagster, api_settings

LOADER_BODIES = {"entities_add_entity", "entities_update_entity"}
SEMANTIC_422 = {
    *LOADER_BODIES,
    "sync_start",
    "sync_retry_failed",
    "monitoring_failed_records",
    "monitoring_pending_children",
    "schedules_create",  # a window the background package cannot read (25:99)
    "schedules_update",
}

DOCUMENT = openapi_document(ENDPOINTS, service_version())
SCHEMA = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"bearer": {"bearer": OPERATOR_TOKEN}}}}
    ),
)


def _seed(store: StateStore) -> None:
    batch = store.start_batch("items", "run-1", "full", partition_key="2026-11-26")
    store.finish_batch(batch, "succeeded", {"fetched": 3, "inserted": 2, "dead_lettered": 1})
    store.add_failed(
        batch,
        "items",
        pl.DataFrame({"stage": ["validate"], "code": ["required"], "raw": [json.dumps({"A": 1})]}),
    )
    store.add_pending(
        "work_orders",
        batch,
        pl.DataFrame(
            {
                "bk_hash": ["c" * 32],
                "payload": [json.dumps({"x": 1})],
                "waiting_for": [json.dumps([{"entity": "items", "bk_hash": "d" * 32}])],
            }
        ),
    )
    store.start_batch("work_orders", "run-2", "incremental")


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("openapi")
    with (
        running_apismith(DatasetSpec(work_orders=20)) as erp,
        running_schedulehub() as hub,
    ):
        settings = api_settings(
            tmp,
            apismith_url=erp.url,
            apismith_token=erp.token,
            schedulehub_url=hub.url,
            schedulehub_token=hub.token,
        )
        store = StateStore.from_settings(settings).ensure_schema()
        _seed(store)
        dagster = FakeDagster()
        dagster.add_run("run-1", "sync_items_job", "SUCCESS", {"syncflow/entity": "items"})
        app = create_app(settings, store=store, dagster=dagster)
        with serve_in_thread(app) as url:
            yield url
        store.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


@SCHEMA.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case, api_url: str) -> None:
    operation = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]["operationId"]
    excluded = []
    if operation in SEMANTIC_422:
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if operation in LOADER_BODIES:
        excluded.append(schemathesis.checks.negative_data_rejection)
    response = case.call_and_validate(base_url=api_url, excluded_checks=excluded)
    if response.status_code == 422:
        problem = response.json()
        assert problem["status"] == 422 and problem["detail"]


def test_the_document_is_served_and_the_docs_page_loads_it(api_url: str) -> None:
    import httpx  # noqa: PLC0415

    served = httpx.get(f"{api_url}/api/v1/openapi.json").json()
    assert served == json.loads(json.dumps(DOCUMENT))
    page = httpx.get(f"{api_url}/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in page.text
    assert "<script src" not in page.text and "<link" not in page.text  # nothing from elsewhere
    assert Path(__file__).exists()
