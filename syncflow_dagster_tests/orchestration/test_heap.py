"""Freezing the long-lived objects for a run, and letting them back."""

import gc

from syncflow_dagster.orchestration.heap import keep_out_of_collector, let_back_into_collector


def test_objects_alive_at_the_start_are_frozen_until_let_back() -> None:
    keep_out_of_collector()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        let_back_into_collector()
    assert gc.get_freeze_count() == 0
