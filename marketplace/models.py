"""Accounts and labs: what every app of the marketplace shares."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from marketplace.emails import normalize_email


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("an email address is required")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


def new_pseudonym_secret() -> str:
    return secrets.token_hex(16)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The email is the login; there is no username."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Random secret behind the lab-stable pseudonyms labs see instead of a name or email:
    # stable across secret-key rotations, different per lab, unlinkable between labs.
    pseudonym_secret = models.CharField(max_length=64, default=new_pseudonym_secret, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("email"), name="user_email_case_insensitive_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class Lab(models.Model):
    """An organisation that posts projects and pays for them."""

    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    VIEWER = "viewer", "Viewer"


# Roles allowed to change a lab's projects, keys and money (owners and managers).
MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})


class Membership(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    added_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["lab", "user"], name="membership_unique_lab_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.lab} as {self.role}"


class LabInvitation(models.Model):
    """A membership waiting for its person to have a verified account with this email."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                "lab",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_unique_open_per_lab_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.lab} as {self.role}"


class ApiKey(models.Model):
    """A lab-scoped credential for machine clients.

    The key is `mk_<prefix>_<secret>`; only its SHA-256 is stored. The secret has 256 bits of
    entropy, so a fast hash is enough (a slow password hash protects guessable secrets, which
    these are not) and keeps authentication cheap on busy pipelines.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WebhookEvent(models.TextChoices):
    ITEM_COMPLETED = "item.completed", "An item has all its labels"
    SCORING_RUN_COMPLETED = "scoring_run.completed", "A scoring run finished"
    PROJECT_BUDGET_LOW = "project.budget_low", "A project's escrow is running low"
    PROJECT_FUNDING_REVERSED = (
        "project.funding_reversed",
        "A payment into a project was refunded or disputed",
    )
    EXPORT_READY = "export.ready", "An export job's file is ready"
    WEBHOOK_TEST = "webhook.test", "The test button"


class WebhookEndpoint(models.Model):
    """A lab's receiver of outbound events, signed the Standard Webhooks way.

    The secret (`whsec_` + base64 of 32 random bytes) is kept to sign every message; the lab
    sees it once, at creation.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100)
    event_types = models.JSONField(default=list, help_text="empty = every event type")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting for its next attempt"
    SUCCEEDED = "succeeded", "Delivered (2xx)"
    FAILED = "failed", "Gave up after every retry"


class WebhookDelivery(models.Model):
    """One message to one endpoint, with its attempts: the lab's delivery log."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(
        max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id} ({self.status})"


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one caller on one endpoint: claimed while its request runs
    (no status yet), then the stored answer to replay (`marketplace/idempotency.py`)."""

    # `user:<id>` or `api_key:<id>`: a key belongs to whoever sent it.
    caller = models.CharField(max_length=64)
    # Method and path, e.g. `POST /api/v1/projects/7/fund/`.
    endpoint = models.CharField(max_length=300)
    key = models.CharField(max_length=255)
    # SHA-256 of method, full path and body; empty while a streamed body is being read.
    fingerprint = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["caller", "endpoint", "key"], name="idempotency_key_once_per_caller"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.endpoint} {self.key}"

    @property
    def is_in_flight(self) -> bool:
        return self.status_code is None
