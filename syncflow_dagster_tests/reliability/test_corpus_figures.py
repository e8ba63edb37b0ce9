"""The corpus of bad inputs, across its four surfaces: at least 50, each with a known outcome.

Each surface's own module checks its cases end to end (none may crash with a
raw traceback or pass silently); this test adds them up and checks that every
case says what must become of it.
"""

from collections import Counter
from typing import Any

from syncflow_dagster_tests.reliability import (
    test_bad_config,
    test_bad_erp_values,
    test_bad_hub,
    test_bad_settings,
)
from syncflow_dagster_tests.reliability.results import record

SURFACES: dict[str, list[Any]] = {
    "entity YAML (test_bad_config)": test_bad_config.CASES,
    "settings (test_bad_settings)": test_bad_settings.CASES,
    "ERP values (test_bad_erp_values)": test_bad_erp_values.CASES,
    "hub behaviour (test_bad_hub)": test_bad_hub.CASES,
}
OUTCOMES = {"clear_error", "dead_letter", "normalization"}


def test_the_four_surfaces_hold_at_least_50_bad_inputs_each_with_an_expected_outcome() -> None:
    counts = {
        surface: dict(Counter(case.outcome_kind for case in cases))
        for surface, cases in SURFACES.items()
    }
    total = sum(len(cases) for cases in SURFACES.values())
    record("corpus", surfaces=counts, total=total)
    for surface, cases in SURFACES.items():
        assert cases, f"{surface}: no cases"
        names = [case.name for case in cases]
        assert len(set(names)) == len(names), f"{surface}: a case name twice"
        for case in cases:
            assert case.outcome_kind in OUTCOMES, f"{surface}: {case.name}: {case.outcome_kind!r}"
            assert case.expected, f"{surface}: {case.name} expects nothing"
    assert total >= 50, counts
    assert set().union(*(c.keys() for c in counts.values())) == OUTCOMES
