"""Pay multipliers per quality tier, in basis points (integers: no floats on the money path).

Scoring decides a contributor's tier (docs/SCORING.md section 5); what a tier pays is money's
business, so the table lives here (docs/MONEY.md, "Earnings")."""

from __future__ import annotations

BASIS = 10_000

TIER_MULTIPLIER_BASIS_POINTS: dict[str, int] = {
    "platinum": 13_000,
    "gold": 11_500,
    "silver": 10_000,
    "bronze": 8_500,
    "probation": 5_000,
    "provisional": 10_000,
}
HIGHEST_MULTIPLIER_BASIS_POINTS = max(TIER_MULTIPLIER_BASIS_POINTS.values())
# Tiers whose released work the project's hourly floor protects, and who share a bonus pool.
FLOOR_AND_BONUS_TIERS = frozenset({"platinum", "gold", "silver", "bronze"})


def apply_basis_points(amount: int, *basis_points: int) -> int:
    """amount x bp1/BASIS x bp2/BASIS ..., rounded down, in integer arithmetic."""
    value = amount
    divisor = 1
    for points in basis_points:
        value *= points
        divisor *= BASIS
    return value // divisor


def uplift_ceiling(base: int) -> int:
    """What the highest tier can add to a base amount, rounded up (reserved at submit)."""
    return -(-base * (HIGHEST_MULTIPLIER_BASIS_POINTS - BASIS) // BASIS)
