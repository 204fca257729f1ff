"""`make bench`: run every benchmark and print its table."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

from bench import (
    bench_auth,
    harness,  # noqa: F401  (pins BLAS threads before anything imports NumPy)
)

BENCHMARKS = {"auth": bench_auth.run}


def main(selected: list[str]) -> None:
    names = selected or list(BENCHMARKS)
    print("# Benchmarks (medians; ratio = baseline time / candidate time; < 1.5x is a tie)")
    for name in names:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
