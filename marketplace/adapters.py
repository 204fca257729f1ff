from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter

from marketplace import services


class AccountAdapter(DefaultAccountAdapter):
    def confirm_email(self, request: Any, email_address: Any) -> Any:
        result = super().confirm_email(request, email_address)
        # Only a verified address may claim lab invitations sent to it.
        services.lab_invitations_accept(user=email_address.user, email=email_address.email)
        return result
