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
        parser.add_argument("--items", type=int, default=300)
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "demo-output"))
        parser.add_argument(
            "--shapley-seconds", type=float, default=30.0, help="time budget for impact sampling"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SCORING_SHAPLEY_MAX_SECONDS = options["shapley_seconds"]
        simulate(seed=options["seed"], items=options["items"], output=Path(options["output"]))
