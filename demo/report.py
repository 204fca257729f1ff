"""What a simulated run shows: `report.json` (for tools and tests), `report.md` with its SVG
charts (for people), and the DPO and SFT exports, in the run's `--output` folder.

report.json:
- `personas`: per persona `n`, `tasks`, `hours` (server-measured active time), `pay_cents`
  (released pay, bonuses and review pay that reached payable), `hourly_cents` (pay / hours),
  `forfeited_cents`, `suspended` (experts stopped by the quality gate or suspended),
  `tasks_until_stopped` (median tasks before the stop; null if none was stopped), `tiers`;
- `experts`: per expert `persona`, `true_accuracy` (share of their preferences on the main
  project that match the simulator's truth), `gold_mean`, `agreement`, `impact` (impact per
  label) with `impact_low` and `impact_high` (its 95% interval), `impact_total` (the Shapley
  value), `composite`, `tier`, `suspended`, `hours`, `pay_cents`;
- `reward_model_accuracy`: `all` (trained on every label submitted), `filtered` (on the
  accepted labels, each weighted by its author's quality weight: the product's
  quality-weighted training) and `silver_or_better` (the accepted labels of silver-or-better
  experts only), on 2,000 fresh pairs with known truth;
- `consensus_accuracy`: `dawid_skene` (the scoring run's) and `majority`;
- `escrow_spent_cents` (paid to experts from the lab's escrows) and `escrow_spent_on_bad_cents`
  (the part paid to spammers and adversaries, after forfeits).

Past 400 lines on purpose: one report with its charts, read top to bottom like the page it writes.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from django.db.models import Count, Sum

from contributors.models import ExpertProfile
from demo.personas import BAD_ACTORS, PERSONAS, make_item
from marketplace.charts import bar_chart
from payouts.models import AccountKind, Earning, EarningStatus, LedgerAccount, PayoutLine
from payouts.services.ledger import ledger_verify
from projects import exports
from projects.models import QualityStop, Submission, SubmissionStatus
from scoring.engine.majority import majority_vote
from scoring.engine.reward_model import fit_reward_model, pairwise_accuracy, quality_weight
from scoring.models import ContributorScore, ItemConsensus

EVAL_PAIRS = 2000
IMPACT_Z = 1.959963984540054
SILVER_OR_BETTER = frozenset({"silver", "gold", "platinum"})


def write_exports(world: Any, side: list[Any], output: Path) -> None:
    context = exports.export_context(
        project=world.project, filters=exports.ExportFilters(format="dpo")
    )
    (output / "dpo.jsonl").write_bytes(b"".join(exports.export_lines(context)))
    with (output / "sft.jsonl").open("wb") as sft:
        for entry in side:
            if entry.project.task_type in ("demonstration", "correction"):
                sft_context = exports.export_context(
                    project=entry.project, filters=exports.ExportFilters(format="sft")
                )
                sft.writelines(exports.export_lines(sft_context))


def _signed(features: Any, preference: str) -> np.ndarray:
    phi = np.asarray(features, dtype=np.float64)
    return phi[0] - phi[1] if preference == "a" else phi[1] - phi[0]


def reward_models(
    world: Any, tiers: dict[int, str], composites: dict[int, float | None]
) -> dict[str, float]:
    """Eval accuracy of a reward model on fresh pairs with known truth, trained on every
    submitted label (`all`), on the accepted labels weighted by their author's quality weight
    (`filtered`: the product's quality-weighted training, `quality_weight`), and on the
    accepted labels of silver-or-better experts only (`silver_or_better`)."""

    rows = list(
        Submission.objects.filter(project=world.project, item__is_gold=False)
        .select_related("item")
        .only("expert_id", "status", "answer", "item__features")
    )
    every = [_signed(row.item.features, row.answer["preference"]) for row in rows]
    weights = np.array(
        [
            quality_weight(composites.get(row.expert_id)) if row.status == "accepted" else 0.0
            for row in rows
        ]
    )
    kept = [
        _signed(row.item.features, row.answer["preference"])
        for row in rows
        if row.status == "accepted" and tiers.get(row.expert_id) in SILVER_OR_BETTER
    ]
    eval_rng = random.Random(world.rng.random())
    evaluation = []
    for index in range(EVAL_PAIRS):
        sim = make_item(eval_rng, 1_000_000 + index)
        evaluation.append(_signed(sim.features, sim.better()))
    pairs = np.asarray(evaluation)

    def accuracy(train: list[np.ndarray], sample_weights: np.ndarray | None = None) -> float:
        if not train:
            return float("nan")
        model = fit_reward_model(np.asarray(train), sample_weights=sample_weights)
        return pairwise_accuracy(model, pairs)

    return {
        "all": accuracy(every),
        "filtered": accuracy(every, weights) if weights.any() else float("nan"),
        "silver_or_better": accuracy(kept),
    }


def consensus(world: Any, run: Any) -> dict[str, float]:
    work = list(
        Submission.objects.filter(
            project=world.project, item__is_gold=False, status=SubmissionStatus.ACCEPTED
        ).values_list("item_id", "answer")
    )
    item_ids = sorted({item_id for item_id, _ in work})
    if not item_ids:
        return {"dawid_skene": float("nan"), "majority": float("nan")}
    position = {item_id: index for index, item_id in enumerate(item_ids)}
    items = np.array([position[item_id] for item_id, _ in work])
    labels = np.array([0 if answer["preference"] == "a" else 1 for _, answer in work])
    truth = np.array([0 if world.truth[item_id].better() == "a" else 1 for item_id in item_ids])
    by_run = dict(
        ItemConsensus.objects.filter(run=run, target="preference").values_list("item_id", "value")
    )
    ds = np.array([0 if by_run.get(item_id) == "a" else 1 for item_id in item_ids])
    vote = majority_vote(items, labels, n_items=len(item_ids), n_classes=2)
    return {
        "dawid_skene": float(np.mean(ds == truth)),
        "majority": float(np.mean(vote.labels == truth)),
    }


def _money(world: Any) -> tuple[dict[int, int], dict[int, int]]:
    """Per expert, over all projects: pay (sent by payout runs, plus what is payable and owed;
    not pending, not held) and the forfeited base."""

    users = [user.pk for user, _ in world.experts]
    paid: dict[int, int] = defaultdict(int)
    for user_id, total in (
        PayoutLine.objects.filter(user_id__in=users, status__in=["sent", "paid"])
        .values_list("user_id")
        .annotate(total=Sum("total"))
    ):
        paid[user_id] += int(total)
    for user_id, balance in LedgerAccount.objects.filter(
        user_id__in=users, kind=AccountKind.EXPERT_PAYABLE
    ).values_list("user_id", "balance"):
        paid[user_id] += int(balance)
    forfeited = dict(
        Earning.objects.filter(expert_id__in=users, status=EarningStatus.FORFEITED)
        .values_list("expert_id")
        .annotate(total=Sum("base"))
    )
    return {k: int(v) for k, v in paid.items()}, {k: int(v) for k, v in forfeited.items()}


def _experts(world: Any, run: Any) -> list[dict[str, Any]]:
    scores = {row.expert_id: row for row in ContributorScore.objects.filter(run=run)}
    paid, forfeited = _money(world)
    stopped = dict(
        QualityStop.objects.exclude(status="reversed").values_list("expert_id", "tasks_done")
    )
    suspended = set(
        ExpertProfile.objects.filter(suspended_at__isnull=False).values_list("user_id", flat=True)
    )
    tasks = dict(
        Submission.objects.filter(expert__in=[user for user, _ in world.experts])
        .values_list("expert_id")
        .annotate(count=Count("id"))
    )
    rows = []
    for user, persona in world.experts:
        score = scores.get(user.pk)
        mine = _own_accuracy(world, user.pk)
        n_train = _train_labels(world, user.pk)
        impact = score.impact_value if score else None
        se = score.impact_se if score else None
        per_label = impact / n_train if impact is not None and n_train else None
        low = high = None
        if impact is not None and se is not None and n_train:
            low, high = (impact - IMPACT_Z * se) / n_train, (impact + IMPACT_Z * se) / n_train
        rows.append(
            {
                "persona": persona,
                "user": user.pk,
                "true_accuracy": float(np.mean(mine)) if mine else None,
                "labels": len(mine),
                "gold_mean": score.gold_mean if score else None,
                "agreement": score.agreement_rate if score else None,
                "impact": per_label,
                "impact_low": low,
                "impact_high": high,
                "impact_total": impact,
                "composite": score.composite if score else None,
                "tier": score.tier if score else "unscored",
                "suspended": user.pk in stopped or user.pk in suspended,
                "tasks_until_stopped": stopped.get(user.pk),
                "tasks": tasks.get(user.pk, 0),
                "hours": world.seconds.get(user.pk, 0.0) / 3600,
                "pay_cents": paid.get(user.pk, 0),
                "forfeited_cents": forfeited.get(user.pk, 0),
            }
        )
    return rows


def _own_accuracy(world: Any, user_id: int) -> list[bool]:
    gold = world.gold_items
    return [
        answer["preference"] == world.truth[item_id].better()
        for (expert, item_id), answer in world.answers.items()
        if expert == user_id and item_id not in gold
    ]


def _train_labels(world: Any, user_id: int) -> int:
    return sum(
        1
        for (expert, item_id), answer in world.answers.items()
        if expert == user_id
        and item_id not in world.gold_items
        and item_id not in world.discounted.get(user_id, set())
        and answer["preference"] in ("a", "b")
    )


def _personas(experts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in experts:
        grouped[row["persona"]].append(row)
    table = {}
    for persona in PERSONAS:
        rows = grouped.get(persona, [])
        hours = sum(row["hours"] for row in rows)
        pay = sum(row["pay_cents"] for row in rows)
        stops = [
            row["tasks_until_stopped"] for row in rows if row["tasks_until_stopped"] is not None
        ]
        table[persona] = {
            "n": len(rows),
            "tasks": sum(row["tasks"] for row in rows),
            "hours": round(hours, 3),
            "pay_cents": pay,
            "hourly_cents": round(pay / hours) if hours else None,
            "forfeited_cents": sum(row["forfeited_cents"] for row in rows),
            "suspended": sum(1 for row in rows if row["suspended"]),
            "tasks_until_stopped": statistics.median(stops) if stops else None,
            "tiers": sorted({row["tier"] for row in rows}),
            "gold_mean": _mean([row["gold_mean"] for row in rows]),
            "agreement": _mean([row["agreement"] for row in rows]),
            "impact": _mean([row["impact"] for row in rows]),
            "true_accuracy": _mean([row["true_accuracy"] for row in rows]),
        }
    return table


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.mean(present) if present else None


def summarise(
    world: Any, run: Any, payout_run: Any, side_accuracy: dict[str, float], output: Path
) -> dict[str, Any]:
    """Compute report.json, print the table, write report.md and the charts."""

    world.gold_items = set(world.project.items.filter(is_gold=True).values_list("pk", flat=True))
    world.discounted = _discounted(world)
    experts = _experts(world, run)
    tiers = {row["user"]: row["tier"] for row in experts}
    composites = {row["user"]: row["composite"] for row in experts}
    personas = _personas(experts)
    spent = sum(row["pay_cents"] for row in experts)
    bad = sum(row["pay_cents"] for row in experts if row["persona"] in BAD_ACTORS)
    ledger = ledger_verify()
    data = {
        "seed": world.seed,
        "personas": personas,
        "experts": experts,
        "reward_model_accuracy": reward_models(world, tiers, composites),
        "consensus_accuracy": consensus(world, run),
        "escrow_spent_cents": spent,
        "escrow_spent_on_bad_cents": bad,
        "side_project_accuracy": side_accuracy,
        "scoring_run": {"id": run.pk, "status": run.status, "timings": run.timings},
        "payout_run": None
        if payout_run is None
        else {
            "id": payout_run.pk,
            "status": payout_run.status,
            "reconciliation_clean": bool(payout_run.reconciliation.get("clean")),
        },
        "ledger": {"clean": ledger.is_clean, "transactions": ledger.transactions_checked},
    }
    world.report.data = data
    world.report.experts = [(row["persona"], row["tier"], row["composite"]) for row in experts]
    world.report.metrics = {
        "dawid_skene_accuracy": data["consensus_accuracy"]["dawid_skene"],
        "majority_vote_accuracy": data["consensus_accuracy"]["majority"],
        "reward_model_all": data["reward_model_accuracy"]["all"],
        "reward_model_filtered": data["reward_model_accuracy"]["filtered"],
        **{f"side_{kind}_accuracy": value for kind, value in side_accuracy.items()},
    }
    (output / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    _print(world.report, data)
    charts = _charts(data, output)
    (output / "report.md").write_text(
        "# Simulated marketplace run\n\n"
        + "\n".join(world.report.lines)
        + "\n\n"
        + "\n".join(f"![{title}]({name})" for name, title in charts)
        + "\n"
    )
    world.report.add(f"Report (report.md, report.json), charts and exports written to {output}/")
    return data


def _discounted(world: Any) -> dict[int, set[int]]:
    """Labels of stopped experts no longer count (they are not train labels in the run)."""

    rows = Submission.objects.filter(project=world.project, status="rejected").values_list(
        "expert_id", "item_id"
    )
    result: dict[int, set[int]] = defaultdict(set)
    for expert, item in rows:
        result[expert].add(item)
    return result


def _money_text(cents: int | None) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f}"


def _show(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print(report: Any, data: dict[str, Any]) -> None:
    report.add("")
    report.add(
        "| persona | n | tasks | hours | pay (USD) | USD/h | forfeited (USD) | stopped | "
        "tasks until stopped | gold | agreement | impact/label (x1000) | true accuracy | tiers |"
    )
    report.add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for persona, row in data["personas"].items():
        impact = row["impact"]
        report.add(
            f"| {persona} | {row['n']} | {row['tasks']} | {row['hours']:.2f} | "
            f"{_money_text(row['pay_cents'])} | {_money_text(row['hourly_cents'])} | "
            f"{_money_text(row['forfeited_cents'])} | {row['suspended']} | "
            f"{_show(row['tasks_until_stopped'], 0)} | {_show(row['gold_mean'])} | "
            f"{_show(row['agreement'])} | {_show(None if impact is None else impact * 1000)} | "
            f"{_show(row['true_accuracy'])} | {', '.join(row['tiers'])} |"
        )
    consensus_accuracy = data["consensus_accuracy"]
    models = data["reward_model_accuracy"]
    report.add("")
    report.add(
        "Consensus accuracy against the simulator's truth: Dawid-Skene "
        f"{consensus_accuracy['dawid_skene']:.3f}, "
        f"majority vote {consensus_accuracy['majority']:.3f}"
    )
    report.add(
        f"Reward-model eval accuracy ({EVAL_PAIRS} fresh pairs): all labels {models['all']:.3f}, "
        f"quality-weighted labels {models['filtered']:.3f}, silver-or-better labels only "
        f"{models['silver_or_better']:.3f}"
    )
    spent = data["escrow_spent_cents"]
    report.add(
        f"Paid to experts: {_money_text(spent)} USD, of which to spammers and adversaries "
        f"{_money_text(data['escrow_spent_on_bad_cents'])} USD "
        f"({(data['escrow_spent_on_bad_cents'] / spent if spent else 0):.1%})"
    )
    ledger = data["ledger"]
    report.add(f"Ledger: {ledger['transactions']} transactions, clean: {ledger['clean']}")


def _charts(data: dict[str, Any], output: Path) -> list[tuple[str, str]]:
    """SVG charts of the headline numbers, written beside report.md (no plotting library)."""

    personas = data["personas"]
    names = [name for name, row in personas.items() if row["n"]]
    charts = {
        "hourly-pay-by-persona.svg": (
            "Effective pay per hour per persona (USD)",
            names,
            [(personas[name]["hourly_cents"] or 0) / 100 for name in names],
        ),
        "pay-by-persona.svg": (
            "Pay per persona (USD, total)",
            names,
            [personas[name]["pay_cents"] / 100 for name in names],
        ),
        "consensus-accuracy.svg": (
            "Consensus accuracy against the truth",
            ["Dawid-Skene", "majority vote"],
            [data["consensus_accuracy"]["dawid_skene"], data["consensus_accuracy"]["majority"]],
        ),
        "reward-model-accuracy.svg": (
            "Reward-model eval accuracy",
            ["all labels", "quality-weighted", "silver or better"],
            [
                data["reward_model_accuracy"]["all"],
                data["reward_model_accuracy"]["filtered"],
                data["reward_model_accuracy"]["silver_or_better"],
            ],
        ),
    }
    written = []
    for name, (title, labels, values) in charts.items():
        (output / name).write_text(str(bar_chart(labels, values, title=title)))
        written.append((name, title))
    return written
