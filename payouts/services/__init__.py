"""Money services, split by subdomain: ledger, funding, accounts, earnings (booked, released,
held), webhooks and payout runs. Other apps import the functions they need from here."""

from payouts.services.earnings import earning_book
from payouts.services.holds import held_forfeit, held_release, payable_hold
from payouts.services.ledger import account_for, ledger_post, ledger_verify

__all__ = [
    "account_for",
    "earning_book",
    "held_forfeit",
    "held_release",
    "ledger_post",
    "ledger_verify",
    "payable_hold",
]
