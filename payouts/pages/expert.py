"""Pages: the expert's earnings and payout account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from marketplace.pages.common import (
    REFUSALS,
    page_user,
    refusal_text,
)
from payouts import selectors
from payouts.services import accounts


@login_required
def expert_earnings(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    summary = selectors.expert_earnings(user=user)
    return render(
        request,
        "payouts/expert_earnings.html",
        {
            "balances": summary["balances"],
            "projects": summary["projects"],
            "quality_stops": summary["quality_stops"],
            "lines": selectors.payout_lines_for(user=user)[:100],
            "account": selectors.payout_account_of(user=user),
        },
    )


@login_required
def expert_payout_account(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    if request.method == "POST":
        try:
            url = accounts.payout_account_onboarding_url(user=user)
        except REFUSALS as error:
            messages.error(request, refusal_text(error))
            return redirect("expert-payout-account")
        return redirect(url)
    return render(
        request,
        "payouts/expert_payout_account.html",
        {
            "account": selectors.payout_account_of(user=user),
            "bank_payouts": selectors.bank_payouts_of(user=user),
        },
    )
