"""Reusable builders of Dagster definitions; `jobs.py`, `schedules.py` apply them."""
