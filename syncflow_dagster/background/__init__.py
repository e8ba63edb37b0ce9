"""Background syncs: big tables synced night by night, inside a window, within a budget.

``schedules`` keeps the rows (one per entity) that are the source of truth;
``window`` says when a night is open; ``runner`` works through a night in
chunks. The CLI, the sensor and the operations API all use these functions.
"""
