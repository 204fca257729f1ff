"""The admin desk's expert work: applications queue, certifications, suspensions, held money.
Same serializers and services as the API."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from contributors import selectors, services
from contributors.models import (
    Application,
    ApplicationStatus,
    Certification,
    CertificationRole,
    ExpertProfile,
    Skill,
    SuspensionEvent,
)
from contributors.serializers import (
    AdminCertificationCreateSerializer,
    DecisionSerializer,
    RejectionSerializer,
    SuspensionSerializer,
)
from marketplace.models import User
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    page_user,
    posted_number,
    staff_desk,
)
from payouts.selectors import expert_earnings as payable_summary
from payouts.selectors import payout_runs_needing_attention
from payouts.services import held_forfeit, held_release
from projects.models import QualityStop, QualityStopStatus
from scoring.selectors import flagged_scores


@staff_desk
def desk_home(request: HttpRequest) -> HttpResponse:
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
    except REFUSALS as error:
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
        except REFUSALS as error:
            flash_errors(request, error)
    return redirect("desk-certifications")


@staff_desk
def desk_suspensions(request: HttpRequest) -> HttpResponse:
    events = SuspensionEvent.objects.select_related("user", "actor").order_by("-created_at")[:200]
    suspended = User.objects.filter(expert_profile__suspended_at__isnull=False).select_related(
        "expert_profile"
    )

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
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(
            request, f"{expert.email}: {'reinstated' if action == 'reinstate' else 'suspended'}."
        )
    return redirect("desk-suspensions")
