"""Shared helpers: timing with medians, and the table every benchmark prints."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# Pinned before NumPy is imported anywhere in the benchmark process: two BLAS thread pools on
# two cores make small fits swing wildly between runs.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

MIN_REPEATS = 3
# On this noisy machine a ratio under 1.5x is a tie.
TIE_RATIO = 1.5


@dataclass(frozen=True)
class Measurement:
    name: str
    median_seconds: float
    repeats: int
    note: str = ""


def measure(
    name: str,
    run: Callable[[], object],
    *,
    repeats: int = 5,
    operations: int = 1,
    note: str = "",
) -> Measurement:
    """Median wall time of `run` over `repeats` runs, per operation when `run` does several."""
    repeats = max(repeats, MIN_REPEATS)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) / operations)
    return Measurement(name, statistics.median(timings), repeats, note)


def verdict(ratio: float) -> str:
    if ratio >= TIE_RATIO:
        return "faster"
    if ratio <= 1 / TIE_RATIO:
        return "slower"
    return "tie"


def print_table(title: str, baseline: Measurement, candidates: list[Measurement]) -> None:
    print(f"\n## {title}")
    print("| what | median | runs | ratio vs baseline | verdict | note |")
    print("|---|---:|---:|---:|---|---|")
    for row in [baseline, *candidates]:
        ratio = baseline.median_seconds / row.median_seconds if row.median_seconds else float("inf")
        label = "baseline" if row is baseline else verdict(ratio)
        print(
            f"| {row.name} | {_format(row.median_seconds)} | {row.repeats} | {ratio:.1f}x "
            f"| {label} | {row.note} |"
        )


def _format(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
