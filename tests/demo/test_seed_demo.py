"""`seed_demo` makes the demo browsable: accounts, the lab owner in the simulated lab, desk MFA."""

from __future__ import annotations

import io

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command

from marketplace import services
from marketplace.models import Membership, User
from tests.marketplace.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seed_demo_joins_the_simulated_lab_and_sets_up_desk_mfa() -> None:
    sim_owner = UserFactory(email="sim-lab-1@demo.local")
    from allauth.account.models import EmailAddress

    simulated = services.lab_create(name="Simulated Cardiology Lab 1", created_by=sim_owner)
    UserFactory(email="sim-careful-1-1@demo.local")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)  # idempotent
    owner = User.objects.get(email="lab@demo.local")
    assert EmailAddress.objects.filter(user=owner, verified=True).exists()
    assert Membership.objects.get(lab=simulated, user=owner).role == "manager"
    staff = User.objects.get(email="admin@demo.local")
    assert Authenticator.objects.filter(user=staff, type="totp").count() == 1
    text = out.getvalue()
    assert "sim-careful-1-1@demo.local" in text and "authenticator app" in text
