"""Run the simulated marketplace loop (seeded, deterministic) and write demo-output/report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.simulation import simulate


class Command(BaseCommand):
    help = "Simulate a lab and a crowd of expert personas through the whole marketplace loop."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--items", type=int, default=600)
        parser.add_argument(
            "--shift-minutes", type=float, default=60.0, help="simulated time each expert works"
        )
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "demo-output"))
        parser.add_argument(
            "--shapley-seconds", type=float, default=30.0, help="time budget for impact sampling"
        )
        parser.add_argument(
            "--no-side-projects",
            action="store_true",
            help="only the pairwise project (no rating, ranking, demonstration, correction)",
        )
        parser.add_argument(
            "--no-payout", action="store_true", help="stop after scoring and release (no run)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SCORING_SHAPLEY_MAX_SECONDS = options["shapley_seconds"]
        simulate(
            seed=options["seed"],
            items=options["items"],
            output=Path(options["output"]),
            shift_minutes=options["shift_minutes"],
            side_projects=not options["no_side_projects"],
            payout=not options["no_payout"],
        )
