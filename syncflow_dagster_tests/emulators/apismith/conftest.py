"""Shared emulator fixtures: a dataset with plenty of bad rows, and servers over it."""

from collections.abc import Iterator

import orjson
import pytest

from syncflow_dagster.emulators.apismith import DatasetSpec, ErpDataset
from syncflow_dagster.testing.apismith import ApiSmithHandle, running_apismith

SPEC = DatasetSpec(seed=7, work_orders=4000, work_centers=100, bad_fraction=0.05)
"""Big enough for every value form and bad kind, small enough to build in a blink."""

SMALL = DatasetSpec(seed=11, work_orders=600, bad_fraction=0.02)


@pytest.fixture(scope="session")
def dataset() -> ErpDataset:
    """A read-only dataset (tests must not mutate it)."""
    return ErpDataset(SPEC)


@pytest.fixture(scope="module")
def api() -> Iterator[ApiSmithHandle]:
    """A read-only server over SMALL (tests must not mutate it)."""
    with running_apismith(SMALL) as handle:
        yield handle


@pytest.fixture
def fresh_api() -> Iterator[ApiSmithHandle]:
    """A server of its own over SMALL, free to mutate."""
    with running_apismith(SMALL) as handle:
        yield handle


def served_rows(data: ErpDataset, entity: str) -> list[dict[str, object]]:
    """The raw records an entity serves, in serving order."""
    view, _ = data.views(entity)
    return [orjson.loads(line) for line in view.lines.to_list()]
