"""The house shape (docs/ARCHITECTURE.md) that a linter does not check by itself.

`make lint` runs import-linter on the apps' dependency order; these tests keep the rest:
every app has its pages in a `pages/` package with its own `urls.py`, and a module past
~400 lines says at its top why it is that long.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("marketplace", "contributors", "projects", "scoring", "payouts", "demo")
PAGE_APPS = ("marketplace", "contributors", "projects", "scoring", "payouts")
MAX_LINES = 400
REASON = "Past 400 lines on purpose"


def _modules() -> list[Path]:
    return sorted(
        path
        for app in (*APPS, "bench")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_every_long_module_states_why_at_its_top() -> None:
    unexplained = []
    for path in _modules():
        source = path.read_text()
        if source.count("\n") <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if REASON not in docstring:
            unexplained.append(f"{path.relative_to(ROOT)} ({source.count(chr(10))} lines)")
    assert not unexplained, f"split these or say '{REASON}: ...' at their top: {unexplained}"


@pytest.mark.parametrize("app", PAGE_APPS)
def test_every_app_keeps_its_pages_in_one_package_with_its_urls(app: str) -> None:
    assert (ROOT / app / "pages" / "urls.py").is_file()
    assert not (ROOT / app / "pages.py").exists()
    # URL patterns live in urls.py only, never beside the views.
    for view_module in (ROOT / app / "pages").glob("*.py"):
        if view_module.name != "urls.py":
            assert "urlpatterns" not in view_module.read_text(), view_module


def test_every_desk_page_is_under_the_desk_prefix() -> None:
    from django.urls import get_resolver

    def walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    desk_views = [
        (route, pattern)
        for route, pattern in walk(get_resolver().url_patterns)
        if getattr(pattern.callback, "__module__", "").endswith(".pages.desk")
    ]
    assert desk_views, "no desk pages found"
    assert all(route.startswith("desk/") for route, _ in desk_views), desk_views
