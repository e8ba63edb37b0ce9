"""The nine steps of a sync run over a :class:`SyncSlice`, without Dagster.

Each step composes pure stages (``syncflow_dagster.stages``) with the edges
(clients, state store) it is handed; the Dagster ops call one step each.
"""
