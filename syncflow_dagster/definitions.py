"""The one entry point: every SyncFlow job, schedule, sensor and resource."""

import dagster as dg

defs = dg.Definitions()
