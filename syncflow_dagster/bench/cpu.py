"""CPU seconds of the processes a benchmark scenario runs on: SyncFlow's run and its neighbours.

A scenario's wall time is shared by four processes on the same cores: the
run process (SyncFlow), PostgreSQL (the postmaster and every server process
it starts), the APISmith emulator and the ScheduleHub emulator. Their CPU
seconds over the same interval show what SyncFlow itself costs, apart from
its neighbours.

The run process measures it (``scenario.py``): it takes a snapshot of every
watched process right before and right after ``execute_in_process``.
PostgreSQL's backends come and go with connections; one that ended in the
interval is counted through the postmaster, which reaps it (its children's
times), so the difference of two snapshots holds every server process's CPU.
"""

from dataclasses import dataclass
from pathlib import Path

import psutil

RUN = "syncflow"
"""The name of the run process's own CPU seconds in the figures."""

ORDER = (RUN, "postgresql", "apismith", "schedulehub")
"""The processes in the order the figures show them."""


@dataclass(frozen=True)
class Watched:
    """A process to watch; ``tree``: with every process it started (and has reaped)."""

    name: str
    pid: int
    tree: bool = False

    def spec(self) -> str:
        """As a ``--watch`` argument of ``scenario.py``."""
        return f"{self.name}={self.pid}{':tree' if self.tree else ''}"

    @classmethod
    def parse(cls, spec: str) -> "Watched":
        """From ``NAME=PID`` or ``NAME=PID:tree``."""
        name, _, rest = spec.partition("=")
        pid, _, tree = rest.partition(":")
        return cls(name, int(pid), tree == "tree")


def postmaster_pid(datadir: Path) -> int:
    """The pid of a cluster's postmaster (the first line of ``postmaster.pid``)."""
    return int((datadir / "postmaster.pid").read_text().splitlines()[0])


def cpu_seconds(process: Watched) -> float:
    """User + system CPU seconds the process (and, with ``tree``, its children) used so far."""
    try:
        root = psutil.Process(process.pid)
        children = root.children(recursive=True) if process.tree else []
        times = root.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    total = times.user + times.system
    if not process.tree:
        return total
    total += times.children_user + times.children_system  # the ones it reaped
    for child in children:
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # ended meanwhile: counted through its parent's children times
        total += t.user + t.system
    return total


def own_cpu_seconds() -> float:
    """This process's CPU seconds so far (every thread)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def snapshot(watched: list[Watched]) -> dict[str, float]:
    """CPU seconds so far of each watched process, by name, and of this one (``RUN``)."""
    figures = {w.name: cpu_seconds(w) for w in watched}
    figures[RUN] = own_cpu_seconds()
    return figures


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by process, in ``ORDER``."""
    names = [n for n in ORDER if n in after] + [n for n in after if n not in ORDER]
    return {n: round(max(0.0, after[n] - before.get(n, 0.0)), 3) for n in names}


def add(total: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    """Two sets of figures added up, by process."""
    out = dict(total)
    for name, seconds in more.items():
        out[name] = round(out.get(name, 0.0) + seconds, 3)
    return out
