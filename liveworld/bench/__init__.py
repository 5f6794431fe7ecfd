"""Benchmarks, apart from the package's stages: each prints a table, then one JSON line last."""
