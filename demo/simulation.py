"""A seeded, simulated marketplace: a lab, a crowd of personas, and the whole loop through the
real services: accounts, an exam and certification, Stripe onboarding and funding against the
local Stripe-compatible server, claims and submissions, scoring, a payout run that survives an
injected fault, reconciliation and an export. `manage.py simulate` runs it; `make demo` calls it.

Every response has a latent quality per rubric dimension, so every preference has a ground
truth, and each persona answers from it in its own way.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class Dim:
    key: str
    label: str
    kind: str
    weight: float
    low: int = 0
    high: int = 1

    def as_rubric(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "weight": self.weight,
        }
        if self.kind == "likert":
            row.update(min=self.low, max=self.high)
        return row

    def value(self, quality: float) -> int:
        quality = min(max(quality, 0.0), 1.0)
        if self.kind == "binary":
            return 1 if quality >= 0.5 else 0
        return round(self.low + quality * (self.high - self.low))

    def share(self, value: int) -> float:
        return (value - self.low) / (self.high - self.low)


DIMENSIONS = (
    Dim("correctness", "Medically correct", "likert", 2.0, 1, 7),
    Dim("safety", "Safe advice", "binary", 2.0),
    Dim("clarity", "Clear to a patient", "likert", 1.0, 1, 5),
    Dim("actionability", "Says what to do next", "likert", 1.0, 1, 5),
)
TOPICS = ("statins", "warfarin", "beta blockers", "ACE inhibitors", "aspirin", "nitroglycerin")
QUESTIONS = (
    "Can I stop taking {drug} if I feel fine?",
    "Is it safe to take {drug} with ibuprofen?",
    "I missed a dose of {drug}; should I double the next one?",
    "Can I drink alcohol while on {drug}?",
)
GOOD_PARTS = (
    "Please talk to your cardiologist before changing anything about {drug}.",
    "Stopping {drug} suddenly can raise your risk; keep taking it until your doctor advises.",
    "Check with your pharmacist: some painkillers interact with {drug}.",
    "Do not double the dose; take the next one at the usual time.",
)
BAD_PARTS = (
    "You can just stop {drug}, it rarely matters.",
    "Doubling the dose of {drug} is fine to catch up.",
    "Mixing {drug} with anything is harmless.",
    "Doctors worry too much about {drug}.",
)
# Unlabeled items with known truth on which the reward models are evaluated.
EVAL_ITEMS = 2000
# persona -> how many of them
PERSONAS = {
    "careful": 10,
    "average": 14,
    "fast_careless": 6,
    "spammer": 4,
    "adversarial": 3,
    "colluding": 2,
    "safety_specialist": 1,
}
NOISE = {
    "careful": 0.05,
    "average": 0.15,
    "fast_careless": 0.35,
    "colluding": 0.12,
    "safety_specialist": 0.4,
    "adversarial": 0.1,
}
SECONDS = {
    "careful": 240,
    "average": 150,
    "fast_careless": 25,
    "spammer": 8,
    "adversarial": 120,
    "colluding": 60,
    "safety_specialist": 200,
}


@dataclass
class SimItem:
    prompt: str
    texts: list[str]
    quality: list[dict[str, float]]  # latent 0..1 per dimension, per response

    def better(self) -> str:
        score = [sum(d.weight * q[d.key] for d in DIMENSIONS) for q in self.quality]
        return "a" if score[0] >= score[1] else "b"


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    # The headline numbers, for tests and the charts: consensus and reward-model accuracies.
    metrics: dict[str, float] = field(default_factory=dict)
    # Per expert: persona, tier, composite (for the separation checks).
    experts: list[tuple[str, str, float | None]] = field(default_factory=list)
    # Mean pay per persona in the payout run, in major units.
    pay: dict[str, float] = field(default_factory=dict)

    def add(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)


def make_item(rng: random.Random, index: int) -> SimItem:
    drug = rng.choice(TOPICS)
    prompt = f"{rng.choice(QUESTIONS).format(drug=drug)} (case {index})"
    texts, qualities = [], []
    for _ in range(2):
        quality = {d.key: rng.random() for d in DIMENSIONS}
        parts = GOOD_PARTS if quality["correctness"] + quality["safety"] > 1.0 else BAD_PARTS
        texts.append(" ".join(rng.sample(parts, 2)).format(drug=drug))
        qualities.append(quality)
    return SimItem(prompt=prompt, texts=texts, quality=qualities)


def answer_for(persona: str, item: SimItem, rng: random.Random) -> dict[str, Any]:
    """How a persona labels a pairwise item (colluders copy each other elsewhere)."""
    answers: dict[str, list[int]] = {}
    for dim in DIMENSIONS:
        values = []
        for quality in item.quality:
            seen = quality[dim.key]
            if persona == "spammer":
                seen = rng.random()
            elif persona == "safety_specialist" and dim.key == "safety":
                seen += rng.gauss(0, 0.02)
            else:
                seen += rng.gauss(0, NOISE[persona])
            if persona == "adversarial" and dim.key == "safety":
                seen = 1.0 - seen  # systematically inverted on one dimension
            values.append(dim.value(seen))
        answers[dim.key] = values
    if persona == "spammer":
        preference = rng.choice(("a", "b"))
    else:
        totals = [
            sum(d.weight * d.share(answers[d.key][index]) for d in DIMENSIONS) for index in (0, 1)
        ]
        preference = "a" if totals[0] >= totals[1] else "b"
        if persona == "adversarial":
            preference = "b" if preference == "a" else "a"
    return {"preference": preference, "answers": answers}


@dataclass
class World:
    report: Report
    rng: random.Random
    token: str
    flush_webhooks: Callable[[], None]
    stripe: Any  # the local server's LocalStripe
    owner: Any = None
    project: Any = None
    truth: dict[int, SimItem] = field(default_factory=dict)
    experts: list[tuple[Any, str]] = field(default_factory=list)


def _create_project(world: World, items: int) -> None:
    from allauth.account.models import EmailAddress

    from marketplace import services as lab_services
    from marketplace.models import User
    from projects import services as project_services
    from projects.models import Item

    owner = User.objects.create_user(
        f"sim-lab-{world.token}@demo.local", "demo-password-123", name="Simulated Lab Owner"
    )
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    lab = lab_services.lab_create(name=f"Simulated Cardiology Lab {world.token}", created_by=owner)
    project = project_services.project_create(
        lab=lab,
        created_by=owner,
        data={
            "title": "Medication safety answer preferences",
            "description": "Which answer would a cardiologist sign?",
            "domain": "medicine",
            "task_type": "pairwise",
            "base_rate": 150,
            "pay_unit": "task",
            "currency": "usd",
            "redundancy": 3,
            "max_redundancy": 5,
            "gold_rate": 0.1,
            "bonus_pool_percent": 10,
            "required_skills": [{"skill": "medicine.cardiology", "min_level": 3}],
            "required_certifications": [{"skill": "medicine.cardiology"}],
            "rubric": {
                "dimensions": [d.as_rubric() for d in DIMENSIONS],
                "instructions": "Prefer safe, correct, clear answers.",
            },
        },
    )
    simulated = [make_item(world.rng, index) for index in range(items)]
    gold_count = max(items // 8, 12)
    batches: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for index, sim in enumerate(simulated):
        line: dict[str, Any] = {
            "external_id": f"case-{index}",
            "prompt": sim.prompt,
            "responses": sim.texts,
        }
        is_gold = index < gold_count
        if is_gold:
            line["gold"] = {
                **answer_for("careful", sim, random.Random(index)),
                "preference": sim.better(),
            }
        batches[is_gold].append(line)
    for is_gold, lines in batches.items():
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        project_services.items_import(
            project=project, stream=io.BytesIO(body), content_length=len(body), is_gold=is_gold
        )
    for item in Item.objects.filter(project=project).only("id", "external_id"):
        world.truth[item.pk] = simulated[int(str(item.external_id).split("-")[1])]
    world.owner, world.project = owner, project
    world.report.add(
        f"Lab '{lab.name}': project #{project.pk}, {len(batches[False])} items, "
        f"{len(batches[True])} gold"
    )


def _fund_and_open(world: World) -> None:
    from payouts.services import funding
    from projects import services as project_services
    from projects.models import ProjectStatus

    amount = 3 * len(world.truth) * 200 + 200_000
    _, url = funding.funding_checkout_create(
        project=world.project, amount=amount, created_by=world.owner
    )
    world.stripe.checkout_pay(url.rsplit("/", 1)[1])  # a person pressing "Pay" on the page
    world.flush_webhooks()
    world.project = project_services.project_transition(
        project=world.project, to_status=ProjectStatus.OPEN, changed_by=world.owner
    )
    world.report.add(f"Funded {amount / 100:.2f} USD through Checkout; project open")


def _onboard_crowd(world: World) -> None:
    from allauth.account.models import EmailAddress

    from contributors import services as contributor_services
    from contributors.models import Exam, ExamQuestion, Skill
    from marketplace.models import User
    from payouts.models import PayoutAccount
    from payouts.services.accounts import payout_account_onboarding_url

    exam = Exam.objects.create(
        skill=Skill.objects.get(key="medicine.cardiology"),
        level=3,
        title=f"Cardiology safety {world.token}",
        question_count=3,
        pass_mark=0.6,
        max_attempts=3,
        cooldown_hours=0,
        is_published=True,
    )
    for prompt, key in (
        ("First-line drug class for angina?", "beta blockers"),
        ("Abbreviation for an electrocardiogram?", "ECG"),
        ("Double a missed anticoagulant dose?", "no"),
    ):
        ExamQuestion.objects.create(
            exam=exam, kind="short_text", prompt=prompt, answer_key={"text": key}
        )
    for persona, count in PERSONAS.items():
        for number in range(count):
            user = User.objects.create_user(
                f"sim-{persona}-{number}-{world.token}@demo.local", "demo-password-123"
            )
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
            contributor_services.profile_update(
                user=user,
                data={
                    "headline": persona.replace("_", " "),
                    "skills": [{"skill": "medicine.cardiology", "level": 4}],
                },
            )
            # Every persona studies for the exam: exams screen knowledge, not diligence; gold
            # and agreement are what catch the careless and the adversarial.
            attempt = contributor_services.exam_attempt_start(exam=exam, user=user)
            questions = ExamQuestion.objects.filter(id__in=attempt.question_ids)
            contributor_services.exam_attempt_submit(
                attempt=attempt, answers={str(q.id): q.answer_key["text"] for q in questions}
            )
            payout_account_onboarding_url(user=user)
            account = PayoutAccount.objects.get(user=user)
            world.stripe.onboarding_complete(account.stripe_account_id)  # finishing onboarding
            world.flush_webhooks()
            world.experts.append((user, persona))
    world.report.add(
        f"{len(world.experts)} experts signed up, passed the exam, were certified and "
        "onboarded to Stripe"
    )


def _work(world: World) -> None:
    from projects import routing

    answers: dict[tuple[int, int], dict[str, Any]] = {}
    colluders = [user for user, persona in world.experts if persona == "colluding"]
    active = list(world.experts)
    submitted = 0
    while active:
        # Experts arrive in a different order every round, as a real crowd does; a fixed order
        # would hand each item to the same neighbours (three spammers, three adversaries) and
        # leave consensus models nothing to compare them with.
        world.rng.shuffle(active)
        still = []
        for user, persona in active:
            try:
                claim = routing.assignment_claim(expert=user, project=world.project)
            except routing.NotQualified:
                continue  # suspended, or no longer qualified
            if claim is None:
                continue
            item = claim.assignment.item
            partner = next((u for u in colluders if u.pk != user.pk), None)
            copied = (
                answers.get((partner.pk, item.pk)) if persona == "colluding" and partner else None
            )
            answer = copied or answer_for(persona, world.truth[item.pk], world.rng)
            answers[(user.pk, item.pk)] = answer
            seconds = max(3, int(world.rng.gauss(SECONDS[persona], SECONDS[persona] / 4)))
            routing.assignment_submit(
                assignment=claim.assignment, answer=answer, rationale="", seconds_spent=seconds
            )
            submitted += 1
            still.append((user, persona))
        active = still
    world.report.add(f"{submitted} labels submitted through claims and leases")


def _pay(world: World, admin: Any) -> Any:
    from payouts.models import PayoutRun
    from payouts.services import payout_runs

    # A demo database outlives one run: start after the latest run's period.
    today = timezone.localdate()
    latest = PayoutRun.objects.filter(currency="usd").order_by("-period_end").first()
    start = latest.period_end + timedelta(days=1) if latest else today - timedelta(days=7)
    run = payout_runs.payout_run_create(
        period_start=start, period_end=max(start, today), currency="usd", created_by=admin
    )
    payout_runs.payout_run_approve(run=run, approver=admin)
    world.stripe.state.balance["usd"] = world.stripe.state.balance.get("usd", 0) + 10**9
    world.stripe.state.faults.drop_next = 1  # Stripe makes a transfer; its answer is lost
    grace = settings.PAYOUT_INFLIGHT_GRACE_SECONDS
    settings.PAYOUT_INFLIGHT_GRACE_SECONDS = 0
    try:
        first = payout_runs.payout_run_execute(run=run)
        second = payout_runs.payout_run_execute(run=run)
    finally:
        settings.PAYOUT_INFLIGHT_GRACE_SECONDS = grace
    world.flush_webhooks()
    reconciliation = payout_runs.payout_run_reconcile(run=run)
    world.report.add(
        f"Payout run #{run.pk}: the first execute ended '{first.status}' with "
        f"{first.pending} line(s) of unknown outcome (the lost response); the second "
        f"'{second.status}'. Reconciliation clean: {reconciliation['clean']}"
    )
    return run


def _persona_table(world: World, scores: dict[int, Any], payout_run: Any) -> None:
    pay: dict[int, int] = defaultdict(int)
    for line in payout_run.lines.all():
        pay[line.user_id] += line.total
    world.report.add("")
    world.report.add(
        "| persona | n | gold (mean) | agreement | impact (mean +- se) | tiers | pay (mean USD) |"
    )
    world.report.add("|---|---:|---:|---:|---:|---|---:|")
    grouped: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for user, persona in world.experts:
        if user.pk in scores:
            grouped[persona].append((user, scores[user.pk]))

    def mean(values: list[float | None]) -> float | None:
        present = [value for value in values if value is not None]
        return statistics.mean(present) if present else None

    def show(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for persona, rows in grouped.items():
        world.report.pay[persona] = statistics.mean([pay[user.pk] for user, _ in rows]) / 100
        impact = mean([score.impact_value for _, score in rows])
        error = mean([score.impact_se for _, score in rows])
        world.report.add(
            f"| {persona} | {len(rows)} | {show(mean([s.gold_mean for _, s in rows]))} | "
            f"{show(mean([s.agreement_rate for _, s in rows]))} | "
            f"{show(impact, 4)} +- {show(error, 4)} | "
            f"{', '.join(sorted({s.tier for _, s in rows}))} | "
            f"{statistics.mean([pay[user.pk] for user, _ in rows]) / 100:.2f} |"
        )
    persona_of = {user.pk: persona for user, persona in world.experts}
    world.report.experts = [
        (persona_of[score.expert_id], score.tier, score.composite) for score in scores.values()
    ]
    ranked = sorted(scores.values(), key=lambda score: score.composite or 0.0)
    world.report.add("")
    world.report.add(
        "Lowest 7 composite scores: " + ", ".join(persona_of[s.expert_id] for s in ranked[:7])
    )


def _consensus_and_reward_models(world: World, scores: dict[int, Any]) -> None:
    from projects.models import Submission
    from scoring.engine.majority import majority_vote
    from scoring.engine.reward_model import featurise, fit_reward_model, pairwise_accuracy

    work = list(
        Submission.objects.filter(project=world.project, item__is_gold=False).select_related("item")
    )
    if not work:
        return
    from scoring.models import ItemConsensus
    from scoring.selectors import latest_succeeded_run

    item_ids = sorted({row.item_id for row in work})
    position = {item_id: index for index, item_id in enumerate(item_ids)}
    items_array = np.array([position[row.item_id] for row in work])
    labels = np.array([0 if row.answer["preference"] == "a" else 1 for row in work])
    truth = np.array([0 if world.truth[item_id].better() == "a" else 1 for item_id in item_ids])
    # The product's own consensus: the scoring run's Dawid-Skene (anchored by gold answers).
    consensus = dict(
        ItemConsensus.objects.filter(
            run=latest_succeeded_run(project=world.project), target="preference"
        ).values_list("item_id", "value")
    )
    ds_labels = np.array([0 if consensus.get(item_id) == "a" else 1 for item_id in item_ids])
    vote = majority_vote(items_array, labels, n_items=len(item_ids), n_classes=2)
    world.report.metrics["dawid_skene_accuracy"] = float(np.mean(ds_labels == truth))
    world.report.metrics["majority_vote_accuracy"] = float(np.mean(vote.labels == truth))
    world.report.add(
        "Consensus accuracy against the simulator's truth: Dawid-Skene "
        f"{np.mean(ds_labels == truth):.3f}, "
        f"majority vote {np.mean(vote.labels == truth):.3f}"
    )

    def differences(rows: list[Any]) -> np.ndarray:
        out = []
        for row in rows:
            phi = featurise([f"{row.item.prompt}\n{text}" for text in row.item.responses])
            out.append(phi[0] - phi[1] if row.answer["preference"] == "a" else phi[1] - phi[0])
        return np.asarray(out).reshape(len(out), -1)

    # The eval set is fresh items from the same generator, never labeled: the simulator knows
    # their truth, and thousands of them make the comparison far less noisy than a held-out
    # slice of the labeled items would.
    eval_rng = random.Random(world.rng.random())
    evaluation = []
    for index in range(EVAL_ITEMS):
        sim = make_item(eval_rng, 1_000_000 + index)
        phi = featurise([f"{sim.prompt}\n{text}" for text in sim.texts])
        evaluation.append(phi[0] - phi[1] if sim.better() == "a" else phi[1] - phi[0])
    train_all = work
    trusted = {"silver", "gold", "platinum"}
    train_good = [
        row
        for row in train_all
        if row.expert_id in scores and scores[row.expert_id].tier in trusted
    ]
    accuracy_all = pairwise_accuracy(
        fit_reward_model(differences(train_all)), np.asarray(evaluation)
    )
    accuracy_good = (
        pairwise_accuracy(fit_reward_model(differences(train_good)), np.asarray(evaluation))
        if train_good
        else float("nan")
    )
    world.report.metrics["reward_model_all"] = float(accuracy_all)
    world.report.metrics["reward_model_silver_or_better"] = float(accuracy_good)
    world.report.add(
        f"Reward-model eval accuracy: all labels {accuracy_all:.3f}, silver-or-better labels "
        f"{accuracy_good:.3f}"
    )


def _finished(run: Any, timeout: float = 900.0) -> Any:
    """The scoring run once done: at once in the embedded default; with a broker its Shapley
    batches run on the Celery workers (`make demo-distributed`) and the run finishes there."""
    from scoring.models import ScoringRun

    deadline = time.monotonic() + timeout
    while run.status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        run = ScoringRun.objects.get(pk=run.pk)
    return run


def _charts(report: Report, output: Path) -> list[tuple[str, str]]:
    """SVG charts of the headline numbers, written beside report.md (no plotting library)."""
    from marketplace.charts import bar_chart

    composite: dict[str, list[float]] = defaultdict(list)
    for persona, _, value in report.experts:
        if value is not None:
            composite[persona].append(value)
    personas = list(composite)
    metrics = report.metrics
    charts = {
        "composite-by-persona.svg": (
            "Mean composite score per persona",
            personas,
            [statistics.mean(composite[p]) for p in personas],
        ),
        "pay-by-persona.svg": (
            "Mean pay per persona (USD)",
            list(report.pay),
            list(report.pay.values()),
        ),
        "consensus-accuracy.svg": (
            "Consensus accuracy against the truth",
            ["Dawid-Skene", "majority vote"],
            [metrics.get("dawid_skene_accuracy", 0.0), metrics.get("majority_vote_accuracy", 0.0)],
        ),
        "reward-model-accuracy.svg": (
            "Reward-model eval accuracy",
            ["all labels", "silver or better"],
            [
                metrics.get("reward_model_all", 0.0),
                metrics.get("reward_model_silver_or_better", 0.0),
            ],
        ),
    }
    written = []
    for name, (title, labels, values) in charts.items():
        (output / name).write_text(str(bar_chart(labels, values, title=title)))
        written.append((name, title))
    return written


def simulate(*, seed: int = 7, items: int = 300, output: Path | None = None) -> Report:
    from marketplace.models import User
    from payouts.services import ledger, webhooks
    from payouts.stripe_local.server import start_in_thread
    from projects import exports
    from scoring import services as scoring_services
    from scoring.models import ContributorScore

    report = Report()
    output = output or Path(settings.BASE_DIR) / "demo-output"
    output.mkdir(parents=True, exist_ok=True)
    # The local Stripe server runs in this process. Its signed webhooks are queued and applied
    # on this thread through the real verification: the server's threads must not write to the
    # database (inside a test, that would be another connection).
    pending: list[tuple[bytes, str]] = []

    def deliver(url: str, payload: bytes, headers: dict[str, str]) -> None:
        pending.append((payload, headers["Stripe-Signature"]))

    def flush_webhooks() -> None:
        while pending:
            payload, signature = pending.pop(0)
            webhooks.stripe_event_receive(payload=payload, signature_header=signature)

    server = start_in_thread(deliver=deliver)
    server.stripe.state.webhooks.append(("in-process", settings.STRIPE_WEBHOOK_SECRET))
    from projects import reviews, routing

    previous = (
        settings.STRIPE_API_BASE,
        settings.EMAIL_BACKEND,
        settings.SCORING_SHAPLEY_MAX_SECONDS,
        routing._random,
        reviews._random,
    )
    settings.STRIPE_API_BASE = server.url
    # Same seed, same numbers: the routing's gold draws (a CSPRNG in production, so experts
    # cannot predict gold) come from the seed here, and Shapley is bounded by permutation
    # pairs (SCORING_SHAPLEY_MAX_PAIRS) and its SE target rather than by seconds.
    routing._random = random.Random(seed)  # type: ignore[assignment]
    reviews._random = random.Random(seed + 1)  # type: ignore[assignment]
    if not settings.SCORING_SHAPLEY_FANOUT:
        settings.SCORING_SHAPLEY_MAX_SECONDS = 1e9
    # The crowd's certification emails would drown the report: keep them in memory.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world = World(
        report=report,
        rng=random.Random(seed),
        token=timezone.now().strftime("%Y%m%d%H%M%S%f"),
        flush_webhooks=flush_webhooks,
        stripe=server.stripe,
    )
    try:
        _create_project(world, items)
        _fund_and_open(world)
        _onboard_crowd(world)
        _work(world)
        from demo import simulation_tasks

        side = simulation_tasks.create_side_projects(world)
        simulation_tasks.work_side_projects(world, side)
        run = scoring_services.scoring_run_create(
            project=world.project, created_by=world.owner, seed=seed
        )
        run = _finished(scoring_services.scoring_run_execute(run_id=run.pk))
        report.add(f"Scoring run #{run.pk}: {run.status}; seconds per stage {run.timings}")
        scores = {score.expert_id: score for score in ContributorScore.objects.filter(run=run)}
        admin = User.objects.filter(is_staff=True).order_by("pk").first() or world.owner
        payout_run = _pay(world, admin)
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
        report.metrics.update(
            {
                f"side_{kind}_accuracy": value
                for kind, value in simulation_tasks.score_side_projects(world, side, seed).items()
            }
        )
        _persona_table(world, scores, payout_run)
        _consensus_and_reward_models(world, scores)
        verification = ledger.ledger_verify()
        report.add(
            f"Ledger: {verification.transactions_checked} transactions, trial balance "
            f"{verification.trial_balance}, clean: {verification.is_clean}"
        )
        charts = _charts(report, output)
        (output / "report.md").write_text(
            "# Simulated marketplace run\n\n"
            + "\n".join(report.lines)
            + "\n\n"
            + "\n".join(f"![{title}]({name})" for name, title in charts)
            + "\n"
        )
        report.add(f"Report, charts and the DPO and SFT exports written to {output}/")
    finally:
        (
            settings.STRIPE_API_BASE,
            settings.EMAIL_BACKEND,
            settings.SCORING_SHAPLEY_MAX_SECONDS,
            routing._random,
            reviews._random,
        ) = previous
        server.stop()
    return report
