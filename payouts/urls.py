from django.urls import path

from payouts import api, money_api

urlpatterns = [
    path("projects/<id:project_id>/fund/", api.ProjectFundView.as_view(), name="project-fund"),
    path(
        "projects/<id:project_id>/fundings/",
        money_api.ProjectFundingsView.as_view(),
        name="project-fundings",
    ),
    path("labs/<id:lab_id>/money/", money_api.LabMoneyView.as_view(), name="lab-money"),
    path("webhooks/stripe/", api.StripeWebhookView.as_view(), name="stripe-webhook"),
    path("me/payout-account/", api.PayoutAccountView.as_view(), name="me-payout-account"),
    path("me/earnings/", api.MyEarningsView.as_view(), name="me-earnings"),
    path("admin/payout-runs/", api.AdminPayoutRunListView.as_view(), name="admin-payout-runs"),
    path(
        "admin/payout-runs/<id:run_id>/",
        api.AdminPayoutRunDetailView.as_view(),
        name="admin-payout-run",
    ),
    path(
        "admin/payout-runs/<id:run_id>/lines/",
        api.AdminPayoutRunLinesView.as_view(),
        name="admin-payout-run-lines",
    ),
    path(
        "admin/payout-runs/<id:run_id>/approve/",
        api.AdminPayoutRunApproveView.as_view(),
        name="admin-payout-run-approve",
    ),
    path(
        "admin/payout-runs/<id:run_id>/execute/",
        api.AdminPayoutRunExecuteView.as_view(),
        name="admin-payout-run-execute",
    ),
    path(
        "admin/payout-runs/<id:run_id>/reconcile/",
        api.AdminPayoutRunReconcileView.as_view(),
        name="admin-payout-run-reconcile",
    ),
    path(
        "admin/payout-lines/<id:line_id>/retry/",
        api.AdminPayoutLineRetryView.as_view(),
        name="admin-payout-line-retry",
    ),
    path(
        "admin/experts/<id:user_id>/held/release/",
        api.AdminHeldReleaseView.as_view(),
        name="admin-held-release",
    ),
    path(
        "admin/experts/<id:user_id>/held/forfeit/",
        api.AdminHeldForfeitView.as_view(),
        name="admin-held-forfeit",
    ),
]
