"""Emulators of APISmith and ScheduleHub: real HTTP servers on the shared contracts."""
