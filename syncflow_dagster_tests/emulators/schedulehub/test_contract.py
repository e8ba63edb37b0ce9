"""Schemathesis against the contract: every generated request, every response conforms.

Twice: once as the contract stands (the entity path parameter is any string, so
most requests meet 404), once with the entity drawn from the hub's own entities,
so that generated ingest bodies and reads reach the handlers behind it.
"""

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    status_code_conformance,
)

from syncflow_dagster.paths import CONTRACTS_DIR
from syncflow_dagster.testing.schedulehub import (
    TEST_TOKEN,
    RunningScheduleHub,
    running_schedulehub,
)

CONTRACT = CONTRACTS_DIR / "schedulehub.openapi.yaml"
ENTITIES = ["items", "work_centers", "work_orders", "operations"]

# Schemathesis sends the token itself (and leaves it out when it tests auth). The
# contract answers an over-long batch with 413, which schemathesis' default list
# of statuses that reject invalid data lacks.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"bearer": {"bearer": TEST_TOKEN}}},
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    400,
                    401,
                    403,
                    404,
                    405,
                    406,
                    409,
                    413,
                    415,
                    422,
                    428,
                    429,
                    "5XX",
                ]
            }
        },
    }
)
schema = schemathesis.openapi.from_path(CONTRACT, config=CONFIG)


SEEN: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def served() -> Iterator[RunningScheduleHub]:
    with running_schedulehub() as hub:
        yield hub


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_contract(case: schemathesis.Case, served: RunningScheduleHub) -> None:
    case.call_and_validate(base_url=served.url)


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_contract_known_entities(case: schemathesis.Case, served: RunningScheduleHub) -> None:
    params = case.path_parameters
    if not params or "entity" not in params:
        return
    params["entity"] = ENTITIES[len(str(params["entity"])) % len(ENTITIES)]
    ingest = case.method == "POST"
    negative = case.meta is not None and not case.meta.generation.mode.is_positive
    excluded = [positive_data_acceptance] if ingest else []
    if negative and case.path.endswith("/records"):
        # A bad limit gets 422 (a problem document); the contract lists no status for it.
        excluded.append(status_code_conformance)
    response = case.call_and_validate(base_url=served.url, excluded_checks=excluded)
    SEEN[case.method, response.status_code] += 1
    if status_code_conformance in excluded and response.status_code == 422:
        assert "limit" in response.json()["detail"]
    assert response.status_code != 404 or case.path.endswith("{external_id}")
    # The contract's prose asks more of an upsert than its JSON schema can say:
    # data and data_hash are required for an upsert. Nothing else may be refused.
    if ingest and not negative and response.status_code != 200:
        assert response.status_code == 422, response.text
        assert "required for an upsert" in response.json()["detail"]


def test_generated_requests_got_through() -> None:
    """The runs above were not all refused at the door: ingest answered 200 and 422 too."""
    assert SEEN["POST", 200] and SEEN["POST", 422] and SEEN["GET", 200], SEEN
