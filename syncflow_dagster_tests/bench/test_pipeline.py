"""The benchmark works and its results are exact (a small run; no timing is asserted)."""

import json
from pathlib import Path

from syncflow_dagster.bench import cpu
from syncflow_dagster.bench.pipeline import SCENARIOS, run_benchmark, update_docs, write_results


def test_small_benchmark_runs_every_scenario_exactly(tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_benchmark(20_000, log=lines.append)
    assert [r.key for r in results] == list(SCENARIOS)
    for r in results:
        assert r.exact, (r.key, r.problems)
        assert r.seconds > 0 and r.peak_rss_mb > 0 and r.stage_seconds
        # CPU seconds of each process during the run: SyncFlow's own and its neighbours'.
        assert list(r.cpu_seconds) == list(cpu.ORDER)
        assert r.cpu_seconds[cpu.RUN] > 0 and r.cpu_seconds["postgresql"] > 0
        assert r.cpu_per_million is not None and r.cpu_per_million > 0
    a, b, c, d, e = results
    assert a.metrics["inserted"] > 19_000 and a.metrics.get("unchanged", 0) == 0
    assert b.metrics.get("inserted", 0) == b.metrics.get("updated", 0) == 0
    assert b.metrics["unchanged"] == a.metrics["inserted"]
    assert c.metrics["fetched"] == c.metrics["updated"] == 200
    assert d.metrics["deleted"] == 200
    # Incremental: the changed rows only (less the few then deleted too), and the
    # deletes found by the key comparison.
    assert e.metrics["fetched"] == e.metrics["updated"] > 180
    assert e.metrics["deleted"] == e.metrics["delete_candidates"] == 200

    out = tmp_path / "result.json"
    doc = write_results(results, 20_000, out)
    assert json.loads(out.read_text())["scenarios"][0]["key"] == "a"
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(
        "# B\n\nbefore\n<!-- bench:results:start -->\nold\n<!-- bench:results:end -->\nafter\n"
    )
    update_docs(doc, docs)
    text = docs.read_text()
    assert "old" not in text and "before" in text and "after" in text
    assert "| (a) initial full sync |" in text
    assert "| scenario | wall | SyncFlow run | PostgreSQL | APISmith | ScheduleHub |" in text
