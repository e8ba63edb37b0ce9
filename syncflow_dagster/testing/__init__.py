"""Throwaway infrastructure for the test suite, the demo and the benchmark."""
