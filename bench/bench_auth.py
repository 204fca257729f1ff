"""Authenticating a lab API key (indexed prefix + SHA-256) against the baseline a naive design
would use: checking the key like a password (Django's PBKDF2 hasher). Keys carry 256 random
bits, so the slow hash buys nothing and costs every pipeline request."""

from __future__ import annotations

from bench.harness import measure, print_table


def run() -> None:
    from django.contrib.auth.hashers import check_password, make_password

    from marketplace.selectors import api_key_hash

    raw_key = "mk_0123456789ab_" + "x" * 43
    stored_hash = api_key_hash(raw_key)
    password_hash = make_password(raw_key)
    fast_loops = 2000

    def sha256_check() -> None:
        for _ in range(fast_loops):
            if api_key_hash(raw_key) != stored_hash:
                raise AssertionError("hash mismatch")

    def pbkdf2_check() -> None:
        if not check_password(raw_key, password_hash):
            raise AssertionError("password mismatch")

    baseline = measure("PBKDF2 check (Django default hasher)", pbkdf2_check, repeats=3)
    ours = measure("SHA-256 check (ours)", sha256_check, repeats=5, operations=fast_loops)
    print_table("API key verification, per check", baseline, [ours])
