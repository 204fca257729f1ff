"""Expert onboarding pages (profile, skills, applications, exams) and the admin desk's expert
work (applications queue, certifications, suspensions). Same serializers and services as the
API; scoping as in the API (404 outside the caller's reach)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from contributors import selectors, services
from contributors.exams import public_question
from contributors.models import (
    Application,
    ApplicationStatus,
    Certification,
    CertificationRole,
    Exam,
    ExamAttempt,
    ExpertProfile,
    ExpertSkill,
    QuestionKind,
    Skill,
    SuspensionEvent,
)
from contributors.serializers import (
    AdminCertificationCreateSerializer,
    ApplicationCreateSerializer,
    AttemptSubmitSerializer,
    DecisionSerializer,
    ProfileUpdateSerializer,
    RejectionSerializer,
    SuspensionSerializer,
)
from marketplace.answer_forms import controls, dimension_answers
from marketplace.models import User
from marketplace.pages import error_messages, flash_errors, page_user, posted_number, staff_desk


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def onboarding_steps(user: User) -> list[dict[str, Any]]:
    """The expert's checklist, each step with whether it is done and where to do it."""
    profile = selectors.expert_profile(expert=user)
    now = timezone.now()
    certifications = selectors.certifications_of(expert=user)
    from payouts.selectors import payout_account_of

    account = payout_account_of(user=user)
    return [
        {"title": "Complete your profile", "done": bool(profile.headline), "url": "expert-profile"},
        {
            "title": "Declare your skills",
            "done": ExpertSkill.objects.filter(profile=profile).exists(),
            "url": "expert-profile",
        },
        {
            "title": "Apply for a skill",
            "done": selectors.applications_of(expert=user).exists(),
            "url": "expert-applications",
        },
        {
            "title": "Pass an exam and get certified",
            "done": any(c.revoked_at is None and c.expires_at > now for c in certifications),
            "url": "expert-exams",
        },
        {
            "title": "Set up your payout account",
            "done": bool(account and account.transfers_active),
            "url": "expert-payout-account",
        },
    ]


@login_required
def expert_home(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    services.profile_get_or_create(user=user)
    steps = onboarding_steps(user)
    return render(
        request,
        "contributors/expert_home.html",
        {
            "steps": steps,
            "done": sum(step["done"] for step in steps),
            "profile": selectors.expert_profile(expert=user),
            "certifications": selectors.certifications_of(expert=user),
            "now": timezone.now(),
        },
    )


@login_required
def expert_profile(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    profile = services.profile_get_or_create(user=user)
    skills = list(Skill.objects.order_by("key"))
    levels = dict(ExpertSkill.objects.filter(profile=profile).values_list("skill__key", "level"))
    errors: list[str] = []
    if request.method == "POST":
        post = request.POST
        hours = post.get("availability_hours_per_week", "").strip()
        data: dict[str, Any] = {
            "headline": post.get("headline", ""),
            "bio": post.get("bio", ""),
            "domains": _lines(post.get("domains", "")),
            "country": post.get("country", "").strip().upper(),
            "languages": _lines(post.get("languages", "")),
            "links": _lines(post.get("links", "")),
            "availability_hours_per_week": int(hours) if hours.isdigit() else None,
            "share_reputation": post.get("share_reputation") == "on",
            "skills": [
                {"skill": skill.key, "level": int(post[f"skill.{skill.key}"])}
                for skill in skills
                if post.get(f"skill.{skill.key}", "0") in {"1", "2", "3", "4", "5"}
            ],
        }
        payload = ProfileUpdateSerializer(data=data)
        if payload.is_valid():
            services.profile_update(user=user, data=dict(payload.validated_data))
            messages.success(request, "Profile saved.")
            return redirect("expert-profile")
        errors = error_messages(exceptions.ValidationError(payload.errors))
        levels = {row["skill"]: row["level"] for row in data["skills"]}
    return render(
        request,
        "contributors/expert_profile.html",
        {
            "profile": profile,
            "skills": [(skill, levels.get(skill.key, 0)) for skill in skills],
            "errors": errors,
            "form": request.POST if request.method == "POST" else None,
        },
    )


@login_required
def expert_applications(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    errors: list[str] = []
    if request.method == "POST":
        payload = ApplicationCreateSerializer(
            data={
                "skill": request.POST.get("skill", ""),
                "level": posted_number(request.POST, "level", 1),
                "statement": request.POST.get("statement", ""),
                "links": _lines(request.POST.get("links", "")),
            }
        )
        if payload.is_valid():
            data = payload.validated_data
            try:
                services.application_create(
                    user=user,
                    skill=data["skill"],
                    level=data["level"],
                    statement=data["statement"],
                    links=data["links"],
                )
            except exceptions.APIException as error:
                errors = error_messages(error)
            else:
                messages.success(request, "Application sent. Staff review it; you get an email.")
                return redirect("expert-applications")
        else:
            errors = error_messages(exceptions.ValidationError(payload.errors))
    return render(
        request,
        "contributors/expert_applications.html",
        {
            "applications": selectors.applications_of(expert=user).select_related("skill"),
            "skills": Skill.objects.order_by("key"),
            "errors": errors,
        },
    )


@login_required
def expert_exams(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    return render(
        request,
        "contributors/expert_exams.html",
        {"exams": selectors.exams_for(expert=user), "now": timezone.now()},
    )


@login_required
@require_POST
def exam_start(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = get_object_or_404(Exam, pk=exam_id, is_published=True)
    try:
        attempt = services.exam_attempt_start(exam=exam, user=page_user(request))
    except exceptions.APIException as error:
        flash_errors(request, error)
        return redirect("expert-exams")
    return redirect("expert-attempt", attempt_id=attempt.pk)


def _question_answer(question: dict[str, Any], post: Any) -> Any:
    name = f"q{question['id']}"
    kind = question["kind"]
    if kind == QuestionKind.MULTIPLE_CHOICE:
        return post.getlist(name)
    if kind == QuestionKind.NUMERIC:
        try:
            return float(post.get(name, ""))
        except ValueError:
            return None
    if kind == QuestionKind.PAIRWISE:
        return {
            "preference": post.get(f"{name}.preference"),
            "answers": dimension_answers(
                post, question["rubric"], response_count=2, prefix=f"{name}."
            ),
        }
    return post.get(name)


@login_required
def exam_attempt(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = get_object_or_404(
        ExamAttempt.objects.select_related("exam", "exam__skill"),
        pk=attempt_id,
        user=page_user(request),
    )
    bank = {q.id: q for q in attempt.exam.questions.filter(id__in=attempt.question_ids)}
    questions = [public_question(bank[qid]) for qid in attempt.question_ids if qid in bank]
    for question in questions:
        if question["kind"] == QuestionKind.PAIRWISE:
            question["controls"] = controls(
                question["rubric"], response_count=2, prefix=f"q{question['id']}."
            )
    errors: list[str] = []
    if request.method == "POST" and attempt.submitted_at is None:
        answers = {
            str(question["id"]): _question_answer(question, request.POST) for question in questions
        }
        payload = AttemptSubmitSerializer(data={"answers": answers})
        payload.is_valid(raise_exception=True)
        try:
            attempt = services.exam_attempt_submit(
                attempt=attempt, answers=dict(payload.validated_data["answers"])
            )
        except exceptions.APIException as error:
            errors = error_messages(error)
        else:
            return redirect("expert-attempt", attempt_id=attempt.pk)
    return render(
        request,
        "contributors/exam_attempt.html",
        {
            "attempt": attempt,
            "questions": questions,
            "errors": errors,
            "certification": Certification.objects.filter(exam_attempt=attempt).first(),
        },
    )


# --- Admin desk ---------------------------------------------------------------------------


@staff_desk
def desk_home(request: HttpRequest) -> HttpResponse:
    from payouts.selectors import payout_runs_needing_attention
    from projects.models import QualityStop, QualityStopStatus
    from scoring.selectors import flagged_scores

    return render(
        request,
        "contributors/desk_home.html",
        {
            "pending_applications": selectors.application_queue(status="pending").count(),
            "suspended": ExpertProfile.objects.filter(suspended_at__isnull=False).count(),
            "flags": len(flagged_scores()),
            "payout_runs": payout_runs_needing_attention().count(),
            "appeals": QualityStop.objects.filter(status=QualityStopStatus.APPEALED).count(),
        },
    )


@staff_desk
def desk_applications(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", ApplicationStatus.PENDING)
    if status not in ApplicationStatus.values:
        status = ApplicationStatus.PENDING
    rows = selectors.application_queue(status=status).select_related("user", "skill")[:200]
    return render(
        request,
        "contributors/desk_applications.html",
        {"applications": rows, "status": status, "statuses": ApplicationStatus.choices},
    )


@staff_desk
@require_POST
def desk_application_decide(request: HttpRequest, application_id: int) -> HttpResponse:
    application = get_object_or_404(Application, pk=application_id)
    approve = request.POST.get("decision") == "approve"
    serializer_class = DecisionSerializer if approve else RejectionSerializer
    payload = serializer_class(
        data={
            "reason": request.POST.get("reason", ""),
            "certify": request.POST.get("certify") == "on",
        }
    )
    if not payload.is_valid():
        messages.error(request, "A rejection needs a reason.")
        return redirect("desk-applications")
    try:
        services.application_decide(
            application=application,
            decided_by=page_user(request),
            approve=approve,
            reason=payload.validated_data["reason"],
            certify=bool(payload.validated_data.get("certify", False)),
        )
    except exceptions.APIException as error:
        flash_errors(request, error)
    else:
        verb = "approved" if approve else "rejected"
        messages.success(request, f"Application #{application.pk} {verb}.")
    return redirect("desk-applications")


@staff_desk
def desk_certifications(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        expert = User.objects.filter(email__iexact=request.POST.get("email", "").strip()).first()
        payload = AdminCertificationCreateSerializer(
            data={
                "user": expert.pk if expert else 0,
                "skill": request.POST.get("skill", ""),
                "level": posted_number(request.POST, "level", 1),
                "role": request.POST.get("role", CertificationRole.EXPERT),
                "days": posted_number(request.POST, "days", 365),
            }
        )
        if expert is None:
            errors = ["No user with this email."]
        elif payload.is_valid():
            data = payload.validated_data
            services.certification_issue(
                user=expert,
                skill=data["skill"],
                level=data["level"],
                issued_by=page_user(request),
                days=data["days"],
                role=data["role"],
            )
            messages.success(request, f"{expert.email} certified for {data['skill'].key}.")
            return redirect("desk-certifications")
        else:
            errors = error_messages(exceptions.ValidationError(payload.errors))
    rows = Certification.objects.select_related("user", "skill").order_by("-issued_at")[:200]
    return render(
        request,
        "contributors/desk_certifications.html",
        {
            "certifications": rows,
            "skills": Skill.objects.order_by("key"),
            "roles": CertificationRole.choices,
            "errors": errors,
            "now": timezone.now(),
        },
    )


@staff_desk
@require_POST
def desk_certification_revoke(request: HttpRequest, certification_id: int) -> HttpResponse:
    certification = get_object_or_404(Certification, pk=certification_id)
    payload = RejectionSerializer(data={"reason": request.POST.get("reason", "")})
    if not payload.is_valid():
        messages.error(request, "A revocation needs a reason.")
    else:
        try:
            services.certification_revoke(
                certification=certification,
                revoked_by=page_user(request),
                reason=payload.validated_data["reason"],
            )
            messages.success(request, f"Certification #{certification.pk} revoked.")
        except exceptions.APIException as error:
            flash_errors(request, error)
    return redirect("desk-certifications")


@staff_desk
def desk_suspensions(request: HttpRequest) -> HttpResponse:
    events = SuspensionEvent.objects.select_related("user", "actor").order_by("-created_at")[:200]
    suspended = User.objects.filter(expert_profile__suspended_at__isnull=False).select_related(
        "expert_profile"
    )
    from payouts.selectors import expert_earnings as payable_summary

    held = {
        user.pk: {
            currency: balance["held"]
            for currency, balance in payable_summary(user=user)["balances"].items()
            if balance["held"]
        }
        for user in suspended
    }
    return render(
        request,
        "contributors/desk_suspensions.html",
        {
            "events": events,
            "suspended": [(user, held.get(user.pk, {})) for user in suspended],
        },
    )


@staff_desk
@require_POST
def desk_held_money(request: HttpRequest, user_id: int) -> HttpResponse:
    """Release a suspended expert's held earnings to them, or forfeit them to the projects."""
    from payouts.services import held_forfeit, held_release

    expert = get_object_or_404(User, pk=user_id)
    forfeit = request.POST.get("action") == "forfeit"
    moved = (held_forfeit if forfeit else held_release)(user=expert)
    verb = "returned to project escrows" if forfeit else "released to the expert"
    messages.success(request, f"{expert.email}: {moved} minor units {verb}.")
    return redirect("desk-suspensions")


@staff_desk
@require_POST
def desk_expert_suspension(request: HttpRequest) -> HttpResponse:
    expert = User.objects.filter(email__iexact=request.POST.get("email", "").strip()).first()
    payload = SuspensionSerializer(data={"reason": request.POST.get("reason", "")})
    if expert is None or not payload.is_valid():
        messages.error(request, "Give the expert's email and a reason.")
        return redirect("desk-suspensions")
    action = request.POST.get("action")
    try:
        if action == "reinstate":
            services.expert_reinstate(
                user=expert,
                reinstated_by=page_user(request),
                reason=payload.validated_data["reason"],
            )
        else:
            services.expert_suspend(
                user=expert,
                suspended_by=page_user(request),
                reason=payload.validated_data["reason"],
            )
    except exceptions.APIException as error:
        flash_errors(request, error)
    else:
        messages.success(
            request, f"{expert.email}: {'reinstated' if action == 'reinstate' else 'suspended'}."
        )
    return redirect("desk-suspensions")


urlpatterns = [
    path("expert/", expert_home, name="expert-home"),
    path("expert/profile/", expert_profile, name="expert-profile"),
    path("expert/applications/", expert_applications, name="expert-applications"),
    path("expert/exams/", expert_exams, name="expert-exams"),
    path("expert/exams/<id:exam_id>/start/", exam_start, name="expert-exam-start"),
    path("expert/attempts/<id:attempt_id>/", exam_attempt, name="expert-attempt"),
    path("desk/", desk_home, name="desk-home"),
    path("desk/applications/", desk_applications, name="desk-applications"),
    path(
        "desk/applications/<id:application_id>/decide/",
        desk_application_decide,
        name="desk-application-decide",
    ),
    path("desk/certifications/", desk_certifications, name="desk-certifications"),
    path(
        "desk/certifications/<id:certification_id>/revoke/",
        desk_certification_revoke,
        name="desk-certification-revoke",
    ),
    path("desk/suspensions/", desk_suspensions, name="desk-suspensions"),
    path("desk/suspensions/change/", desk_expert_suspension, name="desk-expert-suspension"),
    path("desk/held/<id:user_id>/", desk_held_money, name="desk-held-money"),
]
