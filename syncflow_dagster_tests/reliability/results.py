"""What the reliability suite measured: one JSON line per trial, and a summary of them.

The tests call :func:`record` for every kill trial, fault seed, corpus count and
secret scan, *before* they assert, so a failed trial is recorded too. Lines go
to the file named by ``RELIABILITY_RESULTS`` (``make reliability`` sets it;
nothing is written when it is unset, e.g. under ``make test``). Appends of
one short line are atomic, so pytest-xdist workers can share the file.

    python -m syncflow_dagster_tests.reliability.results data/reliability/results.jsonl

prints the figures docs/RELIABILITY.md reports.
"""

import os
import platform
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

ENV = "RELIABILITY_RESULTS"


def record(kind: str, **fields: Any) -> None:
    """Append one result (``kind``: kill, faults, corpus, secrets) if a results file is set."""
    path = os.environ.get(ENV)
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps({"kind": kind, **fields}, default=str) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def load(path: Path) -> list[dict[str, Any]]:
    """Every result in the file, in the order written."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def stage_of(hit: str) -> str:
    """The stage a kill's hit names, coarsely (for counting)."""
    if "state write" in hit:
        return "ingest: inside a state write"
    if hit.startswith("fetch: reconciling"):
        return "fetch: reconciling with the hub"
    if hit.startswith("between "):
        return "between two ops"
    if hit.startswith(("startup", "nothing")):
        return hit.split(" (", maxsplit=1)[0].split(":", maxsplit=1)[0]
    return hit.split(":", maxsplit=1)[0].split(" (", maxsplit=1)[0]


def _kills(rows: list[dict[str, Any]]) -> list[str]:
    kills = sorted((r for r in rows if r["kind"] == "kill"), key=lambda r: r["trial"])
    if not kills:
        return []
    exact = sum(1 for r in kills if r["exact"])
    hits: Counter[str] = Counter(stage_of(r["hit"]) for r in kills)
    out = [
        f"## Kill trials: {len(kills)} tried, {exact} exact after the rerun "
        f"(base seed {kills[0]['base_seed']})",
        "",
        "| trial | seed | aimed at | hit | hub at kill / state at kill | killed batch | "
        "rerun: reconciled, inserted, updated, deleted | exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in kills:
        out.append(
            f"| {r['trial']} | {r['seed']} | {r['aim']} | {r['hit']} | "
            f"{r['hub_at_kill']} / {r['state_at_kill']} | {r['killed_batch']} | "
            f"{r['rerun']} | {'yes' if r['exact'] else 'NO: ' + '; '.join(r['problems'])} |"
        )
    out += ["", "Kills by stage hit: " + ", ".join(f"{k} {v}" for k, v in sorted(hits.items())), ""]
    return out


def _faults(rows: list[dict[str, Any]]) -> list[str]:
    seeds = sorted((r for r in rows if r["kind"] == "faults"), key=lambda r: r["seed"])
    if not seeds:
        return []
    out = [
        f"## Faults: {sum(1 for r in seeds if r['exact'])} of {len(seeds)} seeds exact",
        "",
        "| seed | faults injected: APISmith / ScheduleHub | the run that lost every answer | "
        "sync runs per round (initial / changes / lost answers) | reruns needed | exact |",
        "|---|---|---|---|---|---|",
    ]
    for r in seeds:
        out.append(
            f"| {r['seed']} | {r['api_faults']} / {r['hub_faults']} | {r['lost_answers_run']} | "
            f"{r['runs']} | {r['reruns']} | "
            f"{'yes' if r['exact'] else 'NO: ' + '; '.join(r['problems'])} |"
        )
    return [*out, ""]


def _corpus(rows: list[dict[str, Any]]) -> list[str]:
    corpus = [r for r in rows if r["kind"] == "corpus"]
    if not corpus:
        return []
    last = corpus[-1]
    kinds = sorted({k for counts in last["surfaces"].values() for k in counts})
    out = [
        f"## Bad inputs: {last['total']}",
        "",
        "| surface | " + " | ".join(kinds) + " | total |",
        "|---|" + "---|" * (len(kinds) + 1),
    ]
    totals: dict[str, int] = defaultdict(int)
    for surface, counts in last["surfaces"].items():
        for k in kinds:
            totals[k] += counts.get(k, 0)
        out.append(
            f"| {surface} | "
            + " | ".join(str(counts.get(k, 0)) for k in kinds)
            + f" | {sum(counts.values())} |"
        )
    out.append("| all | " + " | ".join(str(totals[k]) for k in kinds) + f" | {last['total']} |")
    return [*out, ""]


def _secrets(rows: list[dict[str, Any]]) -> list[str]:
    scans = [r for r in rows if r["kind"] == "secrets"]
    if not scans:
        return []
    out = ["## Secrets", ""]
    for r in scans:
        leaks = r["leaks"]
        out.append(
            f"- {r['scenario']}: {r['scanned']} places scanned, "
            + (f"{len(leaks)} leak(s): {'; '.join(leaks)}" if leaks else "0 leaks")
        )
    return [*out, ""]


def summary(rows: list[dict[str, Any]]) -> str:
    """The figures of one suite run, as Markdown."""
    head = [
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "",
    ]
    parts = head + _kills(rows) + _faults(rows) + _corpus(rows) + _secrets(rows)
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    """Print the summary of a results file."""
    path = Path(argv[0] if argv else os.environ.get(ENV, "data/reliability/results.jsonl"))
    if not path.exists():
        print(f"no results at {path}", file=sys.stderr)
        return 1
    print(summary(load(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
