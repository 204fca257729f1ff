"""A real browser (Debian's Chromium driven by Playwright) against the live test server.

Never a downloaded browser: `executable_path` points at /usr/bin/chromium, which `.ci/run`
installs with apt when it is missing. Without it the tests skip locally, but CI sets
E2E_REQUIRED=1 and they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
OUTPUT = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output")) / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The machine has no internet: without these Chromium keeps trying to reach its services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("E2E_REQUIRED"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt install chromium); CI always runs these")
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # ordinary synchronous code, so Django's async guard is told so.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class PageWatch:
    """Collects what must never happen on a page: dialogs from item text, console errors."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def attach(self, page: Any) -> None:
        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.accept()

        page.on("dialog", on_dialog)
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def new_page(chromium: Any, live_server: Any) -> Iterator[Any]:
    contexts = []

    def make(name: str) -> tuple[Any, PageWatch]:
        context = chromium.new_context(
            viewport={"width": 1280, "height": 800}, base_url=live_server.url
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        watch = PageWatch()
        watch.attach(page)
        return page, watch

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


# The payout run in the browser test pays through the same local Stripe server as the money tests.
from tests.payouts.conftest import stripe_local, stripe_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _ledger_flushable(transactional_db: Any) -> Iterator[None]:
    """Live-server tests commit for real, and the database is emptied afterwards. PostgreSQL
    empties it with TRUNCATE (row triggers do not fire); SQLite deletes rows, which the
    ledger's append-only triggers refuse. So on SQLite they are lifted for the flush only and
    put back before the next test."""
    import importlib

    from django.db import connection

    guards = importlib.import_module("payouts.migrations.0002_ledger_guards")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for statement in guards.SQLITE_UP:
                cursor.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
    yield
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for statement in guards.SQLITE_DOWN:
                cursor.execute(statement)
