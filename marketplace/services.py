"""Writes of accounts and labs. Each function owns one state change."""

from __future__ import annotations

import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace import selectors
from marketplace.emails import email_problem, normalize_email
from marketplace.errors import Conflict, DomainError
from marketplace.models import ApiKey, Lab, LabInvitation, Membership, Role, User


def lab_create(*, name: str, created_by: User) -> Lab:
    with transaction.atomic():
        lab = Lab.objects.create(name=name, created_by=created_by)
        Membership.objects.create(lab=lab, user=created_by, role=Role.OWNER, added_by=created_by)
    return lab


def _email_is_verified(user: User, email: str) -> bool:
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def lab_member_add(
    *, lab: Lab, email: str, role: str, added_by: User
) -> Membership | LabInvitation:
    """Add a person to a lab by email.

    An account whose email is verified becomes a member at once. Otherwise an invitation waits
    until an account proves it owns that email (see `lab_invitations_accept`): membership must
    never go to whoever merely typed someone else's address at signup.
    """
    email = normalize_email(email)
    problem = email_problem(email)
    if problem is not None:
        raise DomainError(
            problem,
            code="mixed_script_email",
            details=[{"field": "email", "message": problem, "code": "mixed_script_email"}],
        )
    user = selectors.user_by_email(email=email)
    try:
        with transaction.atomic():
            if user is not None and _email_is_verified(user, email):
                if Membership.objects.filter(lab=lab, user=user).exists():
                    raise Conflict(
                        "This person is already a member of the lab.", code="already_member"
                    )
                result: Membership | LabInvitation = Membership.objects.create(
                    lab=lab, user=user, role=role, added_by=added_by
                )
            else:
                result = LabInvitation.objects.create(
                    lab=lab, email=email, role=role, invited_by=added_by
                )
    except IntegrityError:
        # Two owners adding the same person at once: the unique constraints decide.
        raise Conflict(
            "This person is already a member or invited.", code="already_member"
        ) from None
    transaction.on_commit(
        lambda: send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You were added to {lab.name}",
            message=(
                f"{added_by.email} added you to the lab '{lab.name}' as {role}.\n"
                f"Sign in at {settings.SITE_URL}/ with this address to see it."
            ),
            from_email=None,
            recipient_list=[email],
            fail_silently=True,
        )
    )
    return result


def lab_invitations_accept(*, user: User, email: str) -> list[Membership]:
    """Turn open invitations for a just-verified email into memberships."""
    created: list[Membership] = []
    with transaction.atomic():
        invitations = LabInvitation.objects.select_for_update().filter(
            email__iexact=email, accepted_at__isnull=True
        )
        for invitation in invitations:
            membership, was_created = Membership.objects.get_or_create(
                lab_id=invitation.lab_id,
                user=user,
                defaults={"role": invitation.role, "added_by_id": invitation.invited_by_id},
            )
            invitation.accepted_at = timezone.now()
            invitation.save(update_fields=["accepted_at"])
            if was_created:
                created.append(membership)
    return created


def lab_member_change_role(*, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        # Lock the lab's owner rows so two concurrent demotions cannot leave it ownerless.
        owners = list(
            Membership.objects.select_for_update()
            .filter(lab_id=membership.lab_id, role=Role.OWNER)
            .order_by("pk")
        )
        if membership.role == Role.OWNER and role != Role.OWNER and len(owners) <= 1:
            raise DomainError("A lab must keep at least one owner.", code="last_owner")
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
    return membership


def lab_member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        owners = list(
            Membership.objects.select_for_update()
            .filter(lab_id=membership.lab_id, role=Role.OWNER)
            .order_by("pk")
        )
        if membership.role == Role.OWNER and len(owners) <= 1:
            raise DomainError("A lab must keep at least one owner.", code="last_owner")
        Membership.objects.filter(pk=membership.pk).delete()


def api_key_create(*, lab: Lab, name: str, created_by: User) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never available again."""
    prefix = secrets.token_hex(6)
    raw_key = f"{selectors.API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        lab=lab,
        name=name,
        prefix=prefix,
        key_hash=selectors.api_key_hash(raw_key),
        created_by=created_by,
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey, revoked_by: User) -> ApiKey:
    # Compare-and-swap: revoking twice keeps the first revocation's time and author.
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    api_key.refresh_from_db()
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record use at most once per resolution window, so a busy pipeline is not a write storm."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


def sessions_clear_expired() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
