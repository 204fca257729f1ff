"""Telling people about money: staff alerts and emails to experts and labs, always after the
database transaction commits (never network I/O inside one)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from marketplace.models import User


def email_after_commit(*, recipients: Iterable[str], subject: str, message: str) -> None:
    """Queue one email to `recipients` for when the current transaction commits."""
    addresses = sorted({address for address in recipients if address})
    if not addresses:
        return

    transaction.on_commit(
        lambda: send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
            message=message,
            from_email=None,
            recipient_list=addresses,
            fail_silently=True,
        )
    )


def staff_alert(subject: str, message: str) -> None:
    """Email every active staff member."""
    email_after_commit(
        recipients=User.objects.filter(is_staff=True, is_active=True).values_list(
            "email", flat=True
        ),
        subject=subject,
        message=message,
    )
