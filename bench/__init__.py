"""Benchmarks (`make bench`): each prints medians of at least 3 runs and ratios to a baseline."""
