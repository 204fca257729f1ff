"""95% intervals for the lab's numbers: Wilson for a proportion, Student's t for a mean of
scores in [0, 1]. Every figure shown to a lab carries its n and one of these."""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import t

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval: unlike the normal approximation it stays inside [0, 1] and is
    not empty at 0 or n successes, which is exactly where small audit samples sit."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def proportion(successes: int, n: int) -> dict[str, Any] | None:
    interval = wilson(successes, n)
    if interval is None:
        return None
    return {
        "rate": round(successes / n, 4),
        "n": n,
        "count": successes,
        "low": round(interval[0], 4),
        "high": round(interval[1], 4),
        "method": "wilson",
    }


def mean_with_interval(values: list[float]) -> dict[str, Any] | None:
    """Mean, n and a 95% interval: Wilson when every value is 0 or 1 (a binary dimension is a
    proportion), else Student's t on the sample standard deviation; clipped to [0, 1]. One
    value has no spread, so its interval is the whole scale."""
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if all(value in (0.0, 1.0) for value in values):
        low, high = wilson(round(sum(values)), n) or (0.0, 1.0)
        method = "wilson"
    elif n == 1:
        low, high, method = 0.0, 1.0, "t"
    else:
        spread = math.sqrt(sum((value - mean) ** 2 for value in values) / (n - 1))
        half = float(t.ppf(0.975, n - 1)) * spread / math.sqrt(n)
        low, high, method = max(mean - half, 0.0), min(mean + half, 1.0), "t"
    return {
        "mean": round(mean, 4),
        "n": n,
        "low": round(low, 4),
        "high": round(high, 4),
        "method": method,
    }
