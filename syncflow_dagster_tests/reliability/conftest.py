"""The end-to-end harness of the orchestration tests, for the reliability suite too."""

from syncflow_dagster_tests.orchestration.conftest import make_harness

__all__ = ["make_harness"]
