"""What expert work pays per hour in this market, by domain, shown on the project form so a lab
prices its tasks in line with what the experts it wants earn elsewhere (issue 15). The ranges
are typical for expert data work (US dollars per hour, about $30 to $250); a lab sets its own
rate, and the form turns an hourly figure into a per-task rate for the minutes a task takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateCard:
    domain: str
    label: str
    low: int  # USD per hour
    typical: int
    high: int


RATE_CARDS: tuple[RateCard, ...] = (
    RateCard("general", "General writing and everyday judgement", 30, 40, 60),
    RateCard("math", "Mathematics", 40, 70, 120),
    RateCard("software", "Software engineering", 60, 100, 160),
    RateCard("finance", "Finance and accounting", 70, 110, 180),
    RateCard("law", "Law", 100, 150, 220),
    RateCard("medicine", "Medicine", 100, 150, 250),
)


def rate_card(domain: str) -> RateCard | None:
    """The card for a domain key (`medicine`, or `medicine.cardiology` by its first part)."""
    head = (domain or "").split(".")[0].lower()
    return next((card for card in RATE_CARDS if card.domain == head), None)


def per_task_cents(hourly_dollars: int, minutes_per_task: float) -> int:
    """A per-task rate (minor units) that pays `hourly_dollars` at `minutes_per_task`."""
    return round(hourly_dollars * 100 * minutes_per_task / 60)
