"""The lab settings page: members (add by email, change role, remove; owners) and API keys
(create, shown once; revoke; owners and managers). Same serializers and services as the API."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from marketplace import selectors, services
from marketplace.api import ApiKeyCreateSerializer, MemberAddSerializer, MemberRoleSerializer
from marketplace.models import MANAGING_ROLES, ApiKey, Lab, Membership, Role
from marketplace.pages.common import REFUSALS, flash_errors, lab_for_page, page_user
from marketplace.permissions import LAB_READ_ROLES


@login_required
def lab_settings(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, role = lab_for_page(request, lab_id, LAB_READ_ROLES)
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        needed = {Role.OWNER} if action.startswith("member") else MANAGING_ROLES
        if role not in needed:
            messages.error(request, "Your role in this lab does not allow this.")
            return redirect("console-lab-settings", lab_id=lab.pk)
        try:
            new_key = _apply(request, lab, action)
        except REFUSALS as error:
            flash_errors(request, error)
        if new_key is None:
            return redirect("console-lab-settings", lab_id=lab.pk)
    return render(
        request,
        "marketplace/lab_settings.html",
        {
            "lab": lab,
            "role": role,
            "is_owner": role == Role.OWNER,
            "can_manage": role in MANAGING_ROLES,
            "members": selectors.lab_members(lab=lab).select_related("user"),
            "invitations": selectors.lab_open_invitations(lab=lab),
            "keys": selectors.lab_api_keys(lab=lab) if role in MANAGING_ROLES else [],
            "roles": Role.choices,
            "new_key": new_key,
        },
    )


def _apply(request: HttpRequest, lab: Lab, action: str) -> str | None:
    """Run one form action; returns a new API key's raw secret (shown once) or None."""
    post = request.POST
    if action == "member_add":
        payload = MemberAddSerializer(
            data={"email": post.get("email", ""), "role": post.get("role", "")}
        )
        payload.is_valid(raise_exception=True)
        services.lab_member_add(lab=lab, added_by=page_user(request), **payload.validated_data)
        messages.success(
            request, f"{payload.validated_data['email']} added (or invited until verified)."
        )
    elif action in ("member_role", "member_remove"):
        membership = get_object_or_404(Membership, pk=int(post.get("membership") or 0), lab=lab)
        if action == "member_remove":
            services.lab_member_remove(membership=membership)
            messages.success(request, "Member removed.")
        else:
            role = MemberRoleSerializer(data={"role": post.get("role", "")})
            role.is_valid(raise_exception=True)
            services.lab_member_change_role(membership=membership, role=role.validated_data["role"])
            messages.success(request, "Role changed.")
    elif action == "key_create":
        key = ApiKeyCreateSerializer(data={"name": post.get("name", "")})
        key.is_valid(raise_exception=True)
        _, raw = services.api_key_create(
            lab=lab, name=key.validated_data["name"], created_by=page_user(request)
        )
        return raw
    elif action == "key_revoke":
        api_key = get_object_or_404(ApiKey, pk=int(post.get("key") or 0), lab=lab)
        services.api_key_revoke(api_key=api_key, revoked_by=page_user(request))
        messages.success(request, f"Key '{api_key.name}' revoked.")
    return None
