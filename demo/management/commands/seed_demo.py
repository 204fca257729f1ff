"""Seed the demo accounts: a staff user, a lab with its owner, and a few experts.

Idempotent: running it again keeps existing accounts and resets their demo passwords. After
`simulate`, the demo lab owner is made a manager of the simulated labs (so the console shows
what just happened), the staff account gets an authenticator secret (the admin desk needs
MFA; the secret is printed for an authenticator app: local demo only), and one simulated
expert per persona is listed to sign in as.
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace import services
from marketplace.models import Lab, Membership, Role, User

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


def _demo_totp(user: User) -> str:
    """The staff account's TOTP secret, created once (the desk requires MFA)."""

    existing = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if existing is not None:
        return str(get_adapter().decrypt(existing.data["secret"]))
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


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

            for simulated in Lab.objects.filter(name__startswith="Simulated "):
                if not Membership.objects.filter(lab=simulated, user=owner).exists():
                    services.lab_member_add(
                        lab=simulated,
                        email=owner.email,
                        role=Role.MANAGER,
                        added_by=simulated.created_by,
                    )
            secret = _demo_totp(staff)

        rows = [("staff (admin desk /desk/, /admin/)", staff.email)]
        rows.append((f"lab owner of '{lab.name}'", owner.email))
        rows += [("expert", expert.email) for expert in experts]
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {DEMO_PASSWORD})"))
        for role, email in rows:
            self.stdout.write(f"  {role:<36} {email}")
        personas: dict[str, str] = {}
        for email in User.objects.filter(email__startswith="sim-").values_list("email", flat=True):
            persona = email.split("-")[1]
            if persona != "lab":  # the simulated lab's owner, not an expert
                personas.setdefault(persona, email)
        for persona, email in sorted(personas.items()):
            self.stdout.write(f"  {'simulated ' + persona:<36} {email}")
        self.stdout.write(
            "Admin desk MFA: add this secret to an authenticator app "
            f"(TOTP, SHA1, 6 digits): {secret}"
        )
