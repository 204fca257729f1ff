"""Expert onboarding pages: profile, skills, applications, exams. Same serializers and
services as the API; scoping as in the API (404 outside the caller's reach)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from contributors import selectors, services
from contributors.exams import public_question
from contributors.models import (
    Certification,
    Exam,
    ExamAttempt,
    ExpertSkill,
    QuestionKind,
    Skill,
)
from contributors.serializers import (
    ApplicationCreateSerializer,
    AttemptSubmitSerializer,
    ProfileUpdateSerializer,
)
from marketplace.answer_forms import controls, dimension_answers
from marketplace.models import User
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    page_user,
    posted_number,
)
from payouts.selectors import payout_account_of


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def onboarding_steps(user: User) -> list[dict[str, Any]]:
    """The expert's checklist, each step with whether it is done and where to do it."""
    profile = selectors.expert_profile(expert=user)
    now = timezone.now()
    certifications = selectors.certifications_of(expert=user)

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
            except REFUSALS as error:
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
    except REFUSALS as error:
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
        except REFUSALS as error:
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
