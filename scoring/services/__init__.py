"""Scoring runs (see runs.py): load a project's labels, run the engine, store the snapshots.
Split by subdomain: labels (loading), agreement (consensus and agreement), impact (the Shapley
utility), runs (the run lifecycle, Celery fan-out and snapshots)."""

from scoring.services.labels import ENGINE_VERSION, PREFERENCES, Labels
from scoring.services.runs import (
    scoring_rescore_open_projects,
    scoring_run_create,
    scoring_run_execute,
    scoring_run_merge,
    shapley_batch,
)

__all__ = [
    "ENGINE_VERSION",
    "PREFERENCES",
    "Labels",
    "scoring_rescore_open_projects",
    "scoring_run_create",
    "scoring_run_execute",
    "scoring_run_merge",
    "shapley_batch",
]
