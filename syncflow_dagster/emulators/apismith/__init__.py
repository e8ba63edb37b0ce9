"""APISmith emulator: the ERP read API of the contract, over a generated manufacturing ERP.

Use ``ErpDataset(DatasetSpec(...))`` for the data and its ground truth, ``create_app`` for
the ASGI app, and ``syncflow_dagster.testing.apismith.running_apismith`` to serve it.
"""

from syncflow_dagster.emulators.apismith.app import ApiSmithApp, create_app
from syncflow_dagster.emulators.apismith.badrows import BAD_KINDS
from syncflow_dagster.emulators.apismith.coerce import MutationError
from syncflow_dagster.emulators.apismith.dataset import DatasetSpec, ErpDataset
from syncflow_dagster.emulators.apismith.schema import ENTITIES, ROWVERSION, Column, Entity

__all__ = [
    "BAD_KINDS",
    "ENTITIES",
    "ROWVERSION",
    "ApiSmithApp",
    "Column",
    "DatasetSpec",
    "Entity",
    "ErpDataset",
    "MutationError",
    "create_app",
]
