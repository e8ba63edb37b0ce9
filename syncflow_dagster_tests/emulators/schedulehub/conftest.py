"""Fixtures: a served emulator (real HTTP on loopback) and an httpx client for it."""

from collections.abc import Iterator

import httpx
import pytest

from syncflow_dagster.testing.schedulehub import RunningScheduleHub, running_schedulehub


@pytest.fixture
def hub() -> Iterator[RunningScheduleHub]:
    """A fresh in-memory emulator with the demo schemas."""
    with running_schedulehub() as running:
        yield running


@pytest.fixture
def client(hub: RunningScheduleHub) -> Iterator[httpx.Client]:
    """An authenticated client of ``hub``."""
    with httpx.Client(base_url=hub.url, headers=hub.headers, timeout=30) as http:
        yield http
