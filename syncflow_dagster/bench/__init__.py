"""Benchmarks: commands that measure throughput and print figures to write down."""
