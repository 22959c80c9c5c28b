"""Benchmarks of speed and memory; never part of the test run (see bench/README.md)."""
