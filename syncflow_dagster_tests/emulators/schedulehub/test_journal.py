"""The SQLite journal: what is appended is what is replayed, and compaction keeps the state."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from syncflow_dagster.emulators.schedulehub.journal import Journal, _decode, _encode
from syncflow_dagster_tests.emulators.schedulehub.strategies import HASHES, IDS

parents = st.lists(
    st.tuples(st.sampled_from(["items", "tasks"]), st.sampled_from(IDS)), max_size=3
).map(lambda pairs: tuple(x for pair in pairs for x in pair))
rows = st.tuples(
    st.sampled_from(HASHES),
    st.sampled_from(["2024-01-01T00:00:00.000000Z", "2024-01-02T00:00:00.000000Z"]),
    st.sampled_from([(), ("a",), ("a", "b")]),
    st.binary(max_size=20),
    parents,
).map(lambda r: (r[0], r[1], r[2], r[3], *r[4]))


@settings(max_examples=300, deadline=None)
@given(
    written=st.dictionaries(st.sampled_from(IDS), rows, max_size=6),
    deleted=st.lists(st.sampled_from(IDS), max_size=3, unique=True),
)
def test_encode_decode_round_trip(
    written: dict[str, tuple[object, ...]], deleted: list[str]
) -> None:
    meta, data = _encode(list(written), list(written.values()), deleted)
    assert _decode(meta, data) == (written, deleted)


def test_append_replay_compact(tmp_path: Path) -> None:
    path = str(tmp_path / "j.db")
    row = ("0" * 64, "2024-01-01T00:00:00.000000Z", ("a",), b"1", "items", IDS[0])
    journal = Journal(path)
    journal.append("tasks", [IDS[1], IDS[2]], [row, row], [])
    journal.append("tasks", [], [], [IDS[1]])
    journal.close()
    journal = Journal(path)
    replayed = list(journal.replay())
    assert replayed == [("tasks", {IDS[1]: row, IDS[2]: row}, []), ("tasks", {}, [IDS[1]])]
    journal.compact({"tasks": {IDS[2]: row}, "items": {}})
    assert list(journal.replay()) == [("tasks", {IDS[2]: row}, [])]
    journal.close()
