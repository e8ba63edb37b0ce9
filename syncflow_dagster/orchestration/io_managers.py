"""How DataFrames pass between ops: handed over in memory, then forgotten.

Each stage op's output has exactly one consumer, the next op of the chain, so
the IO manager gives the value to that consumer and drops its own reference:
a run holds one step's frames at a time instead of all nine (Dagster's
``mem_io_manager`` keeps every output until the run ends). Nothing is written
to disk, which is what makes a 1M-row run fit in seconds; the price is that a
run cannot be re-executed *from* a failed step, only as a whole — which the
watermark and the hub's idempotency make safe (docs/ORCHESTRATION.md).
"""

from typing import Any

import dagster as dg


class HandOffIOManager(dg.IOManager):
    """Keeps an op's output until its one consumer loads it."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str], Any] = {}

    @staticmethod
    def _key(context: dg.OutputContext) -> tuple[str, str, str]:
        return (context.run_id, context.step_key, context.name)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Hold the value for the consumer."""
        self._values[self._key(context)] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        """Give the value to its consumer and forget it."""
        upstream = context.upstream_output
        if upstream is None:
            raise dg.Failure("an op input without an upstream output cannot be loaded in memory")
        key = self._key(upstream)
        if key not in self._values:
            raise dg.Failure(
                f"the output of step '{upstream.step_key}' is not in this process: sync runs hand "
                "DataFrames between ops in memory, so a run can be re-executed only with all "
                "steps (which is safe), not from a failed step"
            )
        return self._values.pop(key)


@dg.io_manager(description="Hands each op's output to its one consumer, in memory.")
def hand_off_io_manager(_: dg.InitResourceContext) -> HandOffIOManager:
    """One hand-off store per run (runs execute in process)."""
    return HandOffIOManager()
