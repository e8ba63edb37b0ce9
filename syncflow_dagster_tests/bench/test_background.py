"""The background benchmark works and its results are exact (a small run; no timing is asserted)."""

import json
import math
from pathlib import Path

from syncflow_dagster.bench import cpu
from syncflow_dagster.bench.background import (
    run_background_benchmark,
    update_background_docs,
    write_background_results,
)


def test_small_background_benchmark_loads_the_table_night_by_night(tmp_path: Path) -> None:
    lines: list[str] = []
    r = run_background_benchmark(
        30_000, chunk_rows=5_000, rows_per_night=10_000, sample=2_000, log=lines.append
    )
    assert r.exact, r.problems
    assert r.passed and r.status == "done"
    # The emulator appends a few duplicate-key rows to the 30,000 work orders: the
    # fourth night takes those few, and reaches the end of the data (done, not paused).
    assert 30_000 < r.rows_total < 30_100
    assert len(r.nights) == r.expected_nights == math.ceil(r.rows_total / 10_000) == 4
    assert [n.nights_used for n in r.nights] == [1, 2, 3, 4]
    assert [n.status for n in r.nights] == ["paused", "paused", "paused", "done"]
    assert [n.rows for n in r.nights] == [10_000, 10_000, 10_000, r.rows_total - 30_000]
    assert [n.chunks for n in r.nights] == [2, 2, 2, 1]
    assert len({n.night for n in r.nights}) == 4  # a partition of its own per night
    assert r.rows_synced == r.rows_total
    for n in r.nights:
        assert len(n.chunk_seconds) == n.chunks and all(t > 0 for t in n.chunk_seconds)
        assert n.peak_rss_mb > 0 and n.seconds > 0
        assert list(n.cpu_seconds) == list(cpu.ORDER)
        assert n.cpu_seconds[cpu.RUN] > 0 and n.cpu_seconds["postgresql"] > 0
    assert all(r.cpu_seconds[name] > 0 for name in cpu.ORDER)
    assert r.counts["work_orders"][0] == r.counts["work_orders"][1] > 29_000
    assert r.compared["work_orders"] > 1_000 and r.compared["items"] > 0

    out = tmp_path / "background.json"
    doc = write_background_results(r, "syncflow bench --background --rows 30000", out)
    assert json.loads(out.read_text())["nights"][3]["status"] == "done"
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(
        "# B\n\nbefore\n<!-- bench:background:start -->\nold\n"
        "<!-- bench:background:end -->\nafter\n"
    )
    update_background_docs(doc, docs)
    text = docs.read_text()
    assert "old" not in text and "before" in text and "after" in text
    assert "| 4 (" in text and "| all 4 | done |" in text and "SyncFlow run" in text
