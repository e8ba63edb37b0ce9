"""Pipeline stages: pure functions over Polars DataFrames (no I/O, no Dagster)."""
