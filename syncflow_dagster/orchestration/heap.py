"""Keeps the process's long-lived objects out of the cyclic garbage collector during a run.

A run of a million rows allocates enough short-lived objects (HTTP bodies,
answer lists, frames' Python wrappers) to trigger full collections, and each
full collection walks every tracked object in the process — Dagster's
definitions and machinery included: 0.1-0.15 s a time, measured on the 1M-row
benchmark. Freezing what is alive when the run's first op starts moves those
objects out of the walk; the last op lets them back in, so a long-lived process
(tests, a code server) collects them as usual between runs.
"""

import gc


def keep_out_of_collector() -> None:
    """Move every object alive now to the permanent generation (``gc.freeze``)."""
    gc.freeze()


def let_back_into_collector() -> None:
    """Undo :func:`keep_out_of_collector` (``gc.unfreeze``)."""
    gc.unfreeze()
