import pytest

from syncflow_dagster.metrics import METRIC_NAMES
from syncflow_dagster.stages.track import ConservationError, check_conservation


def _metrics(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(METRIC_NAMES, 0)
    base.update(
        fetched=10,
        normalized=9,
        normalize_failed=1,
        validated=8,
        validation_failed=1,
        mapped=8,
        inserted=4,
        updated=1,
        unchanged=2,
        pending_children=1,
        dead_lettered=2,
    )
    base.update(kw)
    return base


def test_balanced_batch_passes() -> None:
    assert len(METRIC_NAMES) == 21
    check_conservation(_metrics(), delete_candidates=0)
    check_conservation(_metrics(deleted=3), delete_candidates=3)
    check_conservation(_metrics(resolved_children=2, inserted=6), delete_candidates=0)


@pytest.mark.parametrize(
    "change",
    [{"inserted": 3}, {"unchanged": 3}, {"dead_lettered": 3}, {"normalized": 8}, {"mapped": 7}],
)
def test_lost_or_doubled_records_fail_loudly(change: dict[str, int]) -> None:
    with pytest.raises(ConservationError, match="conservation check failed"):
        check_conservation(_metrics(**change), delete_candidates=0)
