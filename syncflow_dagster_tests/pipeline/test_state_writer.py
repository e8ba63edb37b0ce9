"""The state writer: acknowledged rows only, written in bulk, smaller writes at a wave's end."""

from collections.abc import Iterator

import polars as pl
import pytest

from syncflow_dagster.edges.state import StateStore
from syncflow_dagster.pipeline.state_writer import _Wave, state_writer
from syncflow_dagster.stages.delta import INSERT, OP
from syncflow_dagster.stages.resolve import BLOCKED, NEW


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    with StateStore(db_url) as store:
        store.migrate()
        yield store


def _wave(n: int, blocked: frozenset[int] = frozenset()) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bk_hash": [f"{i:032x}" for i in range(n)],
            "data_hash": [f"{i:064x}" for i in range(n)],
            "rowversion": list(range(n)),
            OP: [INSERT] * n,
            NEW: [True] * n,
            BLOCKED: [i in blocked for i in range(n)],
        }
    )


def test_only_answered_batches_are_written_less_rejections_and_waiting_children(
    store: StateStore,
) -> None:
    rows = _wave(100, blocked=frozenset({5, 6}))
    with state_writer(store, "items", batch_id=1) as writer:
        wave = writer.begin_wave(rows, batch_size=10)
        for index in (0, 1, 2, 4, 9):  # batches 3, 5, 6, 7 and 8 got no answer
            rejected = (12, 19) if index == 1 else ()
            sent = 8 if index == 0 else 10
            writer.acknowledge(wave, index, sent, rejected)
    expected = [
        f"{i:032x}"
        for i in [*range(0, 30), *range(40, 50), *range(90, 100)]
        if i not in {5, 6, 12, 19}
    ]
    assert sorted(store.load_keys("items").to_list()) == expected


def test_writes_shrink_towards_the_end_of_a_wave() -> None:
    wave = _Wave(_wave(0), batch_size=10, sendable=1_000)
    # Mid-wave: the full size is awaited.
    wave.answered, wave.pending = 500, 150
    assert not wave.due(flush_rows=200, min_flush_rows=20)
    wave.pending = 200
    assert wave.due(flush_rows=200, min_flush_rows=20)
    # Near the end: half of what is still unanswered is enough, down to the minimum.
    wave.answered, wave.pending = 850, 80
    assert wave.due(flush_rows=200, min_flush_rows=20)  # 150 unanswered: 75 due
    wave.answered, wave.pending = 990, 15
    assert not wave.due(flush_rows=200, min_flush_rows=20)
    wave.pending = 20
    assert wave.due(flush_rows=200, min_flush_rows=20)


class _Failing(StateStore):
    def upsert_state(self, *args: object, **kwargs: object) -> int:
        raise RuntimeError("the database went away")


def test_a_failed_write_is_raised_to_the_caller(sqlite_url: str) -> None:
    with _Failing(sqlite_url) as store:
        store.migrate()
        with (
            pytest.raises(RuntimeError, match="went away"),
            state_writer(store, "items", batch_id=1) as writer,
        ):
            wave = writer.begin_wave(_wave(40), batch_size=10)
            for index in range(4):
                writer.acknowledge(wave, index, 10, ())
        # The writer went on draining after its failure and has stopped.
        assert not writer._thread.is_alive()
