"""The ScheduleHub emulator: the ingest API of the shared contract as a real HTTP server.

:func:`create_app` builds the ASGI app; ``python -m syncflow_dagster.emulators.schedulehub``
serves it; :mod:`syncflow_dagster.testing.schedulehub` runs it for tests.

How a batch goes through (the hot path is ~3 µs per record):

* :mod:`.batch` parses the body with orjson and checks the wire rules (413, 422)
  column by column, falling back to a record-by-record reference reader that
  names the first problem;
* :mod:`.datacheck` / :mod:`.values` check each record's data against the entity
  schema a column at a time (``invalid_record``);
* :mod:`.apply` applies the batch — in bulk when no record can change the answer
  for another, else strictly one by one (:mod:`.rules` is the per-record
  reference); tests check both paths agree on random batches;
* :mod:`.state` keeps each record as one compact tuple (data as JSON values in
  schema order) plus a lazily folded reverse index of parents for ``has_children``;
* :mod:`.journal` makes it survive restarts: one SQLite row per applied batch.
"""

from syncflow_dagster.emulators.schedulehub.app import ScheduleHubApp, create_app
from syncflow_dagster.emulators.schedulehub.store import HubStore

__all__ = ["HubStore", "ScheduleHubApp", "create_app"]
