"""Edges: the plain classes that talk to the outside world (APISmith, ScheduleHub, the state DB)."""
