"""The home page: the way into the workbench, the lab console and the desk."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from marketplace import selectors


def home(request: HttpRequest) -> HttpResponse:
    # Stripe Checkout returns here: `funding_checkout_create` sets the success and cancel URLs
    # to the site's root (docs/MONEY.md, "Funding").
    for parameter, text in (
        ("funded", "Payment received: escrow grows when Stripe confirms."),
        ("funding_cancelled", "Checkout was cancelled; nothing was charged."),
    ):
        raw = request.GET.get(parameter, "")
        if raw.isdigit() and request.user.is_authenticated:
            messages.info(request, text)
            return redirect("console-project", project_id=int(raw))
    labs = (
        selectors.lab_list_for_caller(caller=request.user) if request.user.is_authenticated else []
    )
    return render(request, "marketplace/home.html", {"labs": labs})
