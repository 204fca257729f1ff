"""The lab's money page: every project's figures from the ledger, totals per currency."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from marketplace.pages.common import lab_for_page
from marketplace.permissions import LAB_READ_ROLES
from payouts import lab_money as selectors


@login_required
def lab_money(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, role = lab_for_page(request, lab_id, LAB_READ_ROLES)
    money = selectors.lab_money(lab_id=lab.pk)
    return render(
        request,
        "payouts/lab_money.html",
        {"lab": lab, "role": role, "rows": money["projects"], "totals": money["totals"]},
    )
