"""A seeded, simulated marketplace: a lab, a crowd of personas, and the whole loop through the
real services: accounts, an exam and certification, Stripe onboarding and funding against the
local Stripe-compatible server, claims and submissions in simulated time, the quality gate,
scoring and the release of pending pay, a payout run that survives an injected fault,
reconciliation and the exports. `manage.py simulate` runs it; `make demo` calls it.

Every response has a latent quality per rubric dimension and a feature vector the lab
supplies (demo/personas.py), so every preference has a ground truth and a reward model can
learn from the labels. Each persona answers in its own way and at its own speed, and works a
shift of simulated time (demo/crowd.py), so pay per hour is real.

Past 400 lines on purpose: the simulated week in the order it runs, one step per function.
"""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.utils import timezone

from contributors import services as contributor_services
from contributors.models import Exam, ExamQuestion, Skill
from demo import report as reporting
from demo.crowd import SimClock, WorkLog, shift_start, simulated_time, work_shift
from demo.personas import DIMENSIONS, PERSONAS, SimItem, answer_for, make_item
from marketplace import services as lab_services
from marketplace.models import User
from payouts.models import PayoutAccount, PayoutRun
from payouts.services import funding, payout_runs, webhooks
from payouts.services.accounts import payout_account_onboarding_url
from payouts.services.release import earnings_release
from payouts.stripe_local.server import start_in_thread
from projects import reviews, routing
from projects import services as project_services
from projects.models import Item, ProjectStatus
from scoring import services as scoring_services
from scoring.models import ScoringRun

# The lab's own held-out eval pairs (gold lines with `"split": "eval"`, never served): the
# trusted pairs impact is measured on, with the gold items experts answer.
LAB_EVAL_PAIRS = 400
SHIFT_MINUTES = 60
SIDE_SHIFT_MINUTES = 15


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    # The headline numbers, for tests and the charts: consensus and reward-model accuracies.
    metrics: dict[str, float] = field(default_factory=dict)
    # Per expert: persona, tier, composite (for the separation checks).
    experts: list[tuple[str, str, float | None]] = field(default_factory=list)
    # report.json (see demo/report.py for its fields).
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)


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
    # Every label each expert gave on the main project (also those later discounted).
    answers: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    main_log: WorkLog = field(default_factory=WorkLog)
    seconds: dict[int, float] = field(default_factory=dict)
    seed: int = 0
    gold_items: set[int] = field(default_factory=set)
    discounted: dict[int, set[int]] = field(default_factory=dict)

    def merge_log(self, log: WorkLog) -> None:
        for user_id, seconds in log.seconds.items():
            self.seconds[user_id] = self.seconds.get(user_id, 0.0) + seconds


def _create_project(world: World, items: int) -> None:
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
            # Eight hidden checks among a newcomer's first sixteen tasks, at random positions.
            "onboarding_gold": 8,
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
    batches: dict[str, list[dict[str, Any]]] = {"items": [], "gold": []}
    for index, sim in enumerate(simulated):
        line: dict[str, Any] = {
            "external_id": f"case-{index}",
            "prompt": sim.prompt,
            "responses": sim.texts,
            "features": sim.features,
        }
        if index < gold_count:
            line["gold"] = {
                **answer_for("careful", sim, random.Random(index)),
                "preference": sim.better(),
            }
            batches["gold"].append(line)
        else:
            batches["items"].append(line)
    eval_rng = random.Random(world.rng.random())
    for index in range(LAB_EVAL_PAIRS):
        sim = make_item(eval_rng, 2_000_000 + index)
        batches["gold"].append(
            {
                "external_id": f"eval-{index}",
                "prompt": sim.prompt,
                "responses": sim.texts,
                "features": sim.features,
                "split": "eval",
                "gold": {"preference": sim.better()},
            }
        )
    for kind, lines in batches.items():
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        project_services.items_import(
            project=project,
            stream=io.BytesIO(body),
            content_length=len(body),
            is_gold=kind == "gold",
        )
    for item in Item.objects.filter(project=project, split="train").only("id", "external_id"):
        world.truth[item.pk] = simulated[int(str(item.external_id).split("-")[1])]
    world.owner, world.project = owner, project
    world.report.add(
        f"Lab '{lab.name}': project #{project.pk}, {len(batches['items'])} items with 384-dim "
        f"features per response, {gold_count} gold, {LAB_EVAL_PAIRS} held-out eval pairs"
    )


def _fund_and_open(world: World) -> None:
    amount = 3 * len(world.truth) * 300 + 200_000
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


def _work(world: World, clock: SimClock, shift_seconds: float) -> None:
    colluders = [user for user, persona in world.experts if persona == "colluding"]

    def answer(user: Any, persona: str, assignment: Any) -> dict[str, Any]:
        item_id = assignment.item_id
        partner = next((u for u in colluders if u.pk != user.pk), None)
        copied = (
            world.answers.get((partner.pk, item_id)) if persona == "colluding" and partner else None
        )
        # Gold items come from the same generator: answered like any other item.
        given = copied or answer_for(persona, world.truth[item_id], world.rng)
        world.answers[(user.pk, item_id)] = given
        return given

    world.main_log = work_shift(
        project=world.project,
        experts=world.experts,
        answer=answer,
        clock=clock,
        shift_seconds=shift_seconds,
        rng=world.rng,
    )
    world.merge_log(world.main_log)
    world.report.add(
        f"{world.main_log.submitted} labels in a {shift_seconds / 60:.0f}-minute shift of "
        f"simulated time; {len(world.main_log.stopped_after)} experts stopped by the quality gate"
    )


def finished(run: Any, timeout: float = 900.0) -> Any:
    """The scoring run once done: at once in the embedded default; with a broker its Shapley
    batches run on the Celery workers (`make demo-distributed`) and the run finishes there."""

    deadline = time.monotonic() + timeout
    while run.status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        run = ScoringRun.objects.get(pk=run.pk)
    return run


def release_pending(run: Any) -> None:
    """A succeeded run releases the pending pay it clears once its transaction commits; called
    here too (it is idempotent per run), so the simulation does not depend on when that is."""

    if run.status == "succeeded":
        earnings_release(run=run)


def _pay(world: World, admin: Any) -> Any:
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


def simulate(
    *,
    seed: int = 7,
    items: int = 600,
    output: Path | None = None,
    shift_minutes: float = SHIFT_MINUTES,
    side_projects: bool = True,
    payout: bool = True,
) -> Report:
    # Cycle broken here: side_projects reuses this module's helpers.
    from demo import side_projects as side_work  # noqa: PLC0415

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
    # The crowd's certification emails would drown the report: keep them in memory, unless
    # they go to files already (`make demo`: demo-output/emails/).
    if not settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world = World(
        report=report,
        rng=random.Random(seed),
        token=timezone.now().strftime("%Y%m%d%H%M%S%f"),
        flush_webhooks=flush_webhooks,
        stripe=server.stripe,
        seed=seed,
    )
    shift_seconds = shift_minutes * 60
    try:
        _create_project(world, items)
        _fund_and_open(world)
        _onboard_crowd(world)
        side = side_work.create_side_projects(world) if side_projects else []
        clock = SimClock(shift_start(shift_seconds + SIDE_SHIFT_MINUTES * 60 * 4 + 1800, 1))
        with simulated_time(clock):
            _work(world, clock, shift_seconds)
            if side:
                reviewers = side_work.certify_reviewers(world)
                side_work.work_side_projects(world, side, clock, SIDE_SHIFT_MINUTES * 60)
                side_work.review_side_projects(world, side, reviewers, clock)
        run = scoring_services.scoring_run_create(
            project=world.project, created_by=world.owner, seed=seed
        )
        run = finished(scoring_services.scoring_run_execute(run_id=run.pk))
        report.add(f"Scoring run #{run.pk}: {run.status}; seconds per stage {run.timings}")
        release_pending(run)
        side_accuracy = side_work.score_side_projects(world, side, seed) if side else {}
        admin = User.objects.filter(is_staff=True).order_by("pk").first() or world.owner
        payout_run = _pay(world, admin) if payout else None
        reporting.write_exports(world, side, output)
        reporting.summarise(world, run, payout_run, side_accuracy, output)
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
