"""Dagster: resources, generic ops, the job factory, partitions, schedules, sensors."""
