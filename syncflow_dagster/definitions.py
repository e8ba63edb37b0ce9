"""The one entry point: every SyncFlow job, schedule, sensor and resource.

Settings and the entity configuration are read when Dagster loads the code
location (calling ``defs``), never when this module is imported.
"""

import dagster as dg

from syncflow_dagster.logs import set_level
from syncflow_dagster.orchestration.build import build_definitions
from syncflow_dagster.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    """SyncFlow's definitions, from the environment's settings."""
    settings = load_settings()
    set_level(settings)
    return build_definitions(settings)
