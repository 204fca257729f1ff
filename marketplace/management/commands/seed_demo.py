"""Seed the demo accounts: a staff user, a lab with its owner, and a few experts.

Idempotent: running it again keeps existing accounts and resets their demo passwords.
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace import services
from marketplace.models import Lab, User

DEMO_PASSWORD = "demo-password-123"  # noqa: S105  (printed on purpose: local demo accounts)


def _demo_user(email: str, *, name: str, is_staff: bool = False) -> User:
    user, _ = User.objects.get_or_create(email=email, defaults={"name": name})
    user.is_staff = is_staff
    user.is_superuser = is_staff
    user.set_password(DEMO_PASSWORD)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


class Command(BaseCommand):
    help = "Create the demo accounts and print their credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            staff = _demo_user("admin@demo.local", name="Ada Admin", is_staff=True)
            owner = _demo_user("lab@demo.local", name="Lea Lab-Owner")
            experts = [
                _demo_user(f"expert{index}@demo.local", name=f"Demo Expert {index}")
                for index in range(1, 4)
            ]
            lab = Lab.objects.filter(name="Demo Lab", created_by=owner).first()
            if lab is None:
                lab = services.lab_create(name="Demo Lab", created_by=owner)

        rows = [("staff (admin desk, /admin/)", staff.email)]
        rows.append((f"lab owner of '{lab.name}'", owner.email))
        rows += [("expert", expert.email) for expert in experts]
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {DEMO_PASSWORD})"))
        for role, email in rows:
            self.stdout.write(f"  {role:<32} {email}")
