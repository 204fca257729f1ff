"""`make bench`: run every benchmark (or those named) and print its table."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

from bench import harness  # noqa: F401  (pins BLAS threads before anything imports NumPy)
from bench.setup import choose_database, django_ready


def main(selected: list[str]) -> None:
    database = choose_database()
    django_ready()
    from bench import (
        bench_auth,
        bench_feed,
        bench_import,
        bench_pages,
        bench_payouts,
        bench_routing,
        bench_scoring,
    )

    benchmarks = {
        "auth": bench_auth.run,
        "feed": bench_feed.run,
        "import": bench_import.run,
        "pages": bench_pages.run,
        "payouts": bench_payouts.run,
        "routing": bench_routing.run,
        "scoring": bench_scoring.run,
    }
    print("# Benchmarks (medians; ratio = baseline time / candidate time; < 1.5x is a tie)")
    print(f"database: {database.split('@')[-1]}")
    for name in selected or list(benchmarks):
        benchmarks[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
