from django.urls import path

from payouts.pages import desk, expert, lab_money

urlpatterns = [
    path("expert/earnings/", expert.expert_earnings, name="expert-earnings"),
    path("expert/payout-account/", expert.expert_payout_account, name="expert-payout-account"),
    path("labs/<id:lab_id>/money/", lab_money.lab_money, name="console-lab-money"),
    path("desk/payout-runs/", desk.desk_payout_runs, name="desk-payout-runs"),
    path("desk/pay/", desk.desk_pay, name="desk-pay"),
    path("desk/payout-runs/<id:run_id>/", desk.desk_payout_run, name="desk-payout-run"),
    path(
        "desk/payout-runs/<id:run_id>/action/",
        desk.desk_payout_run_action,
        name="desk-payout-run-action",
    ),
]
