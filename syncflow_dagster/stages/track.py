"""Track stage: a batch's metrics and the conservation check.

Conservation: every record a run takes up ends in exactly one bucket::

    fetched + resolved_children + delete_candidates
        == inserted + updated + deleted + unchanged + pending_children + dead_lettered

``resolved_children`` are children released from an earlier run's queue and
``delete_candidates`` are keys the ERP no longer lists: both enter the run
without being fetched. ``dead_lettered`` must also equal the sum of the
per-stage failure counts. Records ``settled`` at fetch (the hub has them in
this very version) count as unchanged and skip normalize … identity.
"""

from collections.abc import Mapping

from syncflow_dagster.errors import PermanentError
from syncflow_dagster.metrics import FAILURE_METRICS, METRIC_NAMES


class ConservationError(PermanentError):
    """Records went missing or were counted twice; the batch must not count as done."""


def conservation_problems(
    metrics: Mapping[str, int], delete_candidates: int, settled: int = 0
) -> list[str]:
    """What does not add up in a batch's metrics (empty when everything does)."""
    m = {name: int(metrics.get(name, 0)) for name in METRIC_NAMES}
    problems = []
    entered = m["fetched"] + m["resolved_children"] + delete_candidates
    landed = (
        m["inserted"]
        + m["updated"]
        + m["deleted"]
        + m["unchanged"]
        + m["pending_children"]
        + m["dead_lettered"]
    )
    if entered != landed:
        problems.append(
            f"fetched {m['fetched']} + released children {m['resolved_children']} + delete "
            f"candidates {delete_candidates} = {entered}, but inserted {m['inserted']} + updated "
            f"{m['updated']} + deleted {m['deleted']} + unchanged {m['unchanged']} + pending "
            f"{m['pending_children']} + dead-lettered {m['dead_lettered']} = {landed}"
        )
    failed = sum(m[k] for k in FAILURE_METRICS)
    if failed != m["dead_lettered"]:
        problems.append(
            f"stage failures add up to {failed} but {m['dead_lettered']} were dead-lettered"
        )
    if m["normalized"] + m["normalize_failed"] + m["fetch_failed"] + settled != m["fetched"]:
        problems.append(
            f"normalized {m['normalized']} + failed {m['normalize_failed']} + unreadable "
            f"{m['fetch_failed']} + settled at fetch {settled} != fetched {m['fetched']}"
        )
    if m["validated"] + m["validation_failed"] != m["normalized"]:
        problems.append(
            f"validated {m['validated']} + failed {m['validation_failed']} "
            f"!= normalized {m['normalized']}"
        )
    if m["mapped"] + m["map_failed"] != m["validated"]:
        problems.append(
            f"mapped {m['mapped']} + failed {m['map_failed']} != validated {m['validated']}"
        )
    return problems


def check_conservation(
    metrics: Mapping[str, int], delete_candidates: int, settled: int = 0
) -> None:
    """Raise when the batch's records do not add up.

    Raises:
        ConservationError: listing every equation that does not hold.
    """
    problems = conservation_problems(metrics, delete_candidates, settled)
    if problems:
        raise ConservationError("conservation check failed: " + "; ".join(problems))
