"""Every Markdown file the code, templates, tests and docs refer to is in the repository.

The specifications the code cites (the API contract, the money rules, the scoring
definitions) live in `docs/`; a reference to a file that is not in the tree (the design's
copies outside it, a renamed page) fails here rather than sending a reader nowhere. A
reference resolves from the repository root (`docs/MONEY.md`) or, as Markdown links do, from
the citing file's own folder (a bare file name inside `docs/`). Where a reference names a section
(`docs/MONEY.md, "Funding"`, `docs/SCORING.md section 4`), that section must exist too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED_SUFFIXES = {".py", ".html", ".md"}
# Not sources: virtual envs, build output, what the demo and the tests write.
SKIPPED_FOLDERS = {
    "__pycache__",
    "node_modules",
    "var",
    "demo-output",
    "test-output",
    "build",
    "dist",
}
# Files the project writes at run time, named in the README and the demo's code; they are
# output, not documentation in the tree.
GENERATED = {"report.md", "demo-output/report.md"}

# A path ending in `.md`, not inside a URL (no `/`, `:` or word character just before it).
REFERENCE = re.compile(r"(?<![\w/.:-])((?:\.\.?/)*(?:[\w-]+/)*[\w-]+\.md)\b")
# A document followed by `, "Section"` (the quote may follow a line break and a comment's `#`),
# or `, Section)` unquoted, or ` section 4` / ` sections 2 and 3`.
QUOTED_SECTION = re.compile(r"((?:[\w-]+/)*[\w-]+\.md),[\s#]*\"([^\"\n]+)\"")
BARE_SECTION = re.compile(r"((?:[\w-]+/)*[\w-]+\.md), ([A-Z][\w ]*?)\)")
NUMBERED_SECTION = re.compile(r"((?:[\w-]+/)*[\w-]+\.md),? sections? (\d+(?:(?:, | and )\d+)*)")
HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)
BOLD = re.compile(r"\*\*(.+?)\*\*")
NUMBERED_HEADING = re.compile(r"^#+\s+(\d+)\.", re.MULTILINE)


def _scanned_files() -> Iterator[Path]:
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        folders = relative.parts[:-1]
        if any(
            part.startswith(".") or part in SKIPPED_FOLDERS or part.endswith(".egg-info")
            for part in folders
        ):
            continue
        if path.suffix in SCANNED_SUFFIXES and path.is_file():
            yield path


def _resolve(citing: Path, reference: str) -> Path | None:
    for base in (citing.parent, ROOT):
        candidate = (base / reference).resolve()
        if candidate.is_file() and candidate.is_relative_to(ROOT):
            return candidate
    return None


def _where(citing: Path, text: str, offset: int) -> str:
    return f"{citing.relative_to(ROOT)}:{text.count(chr(10), 0, offset) + 1}"


def _references() -> list[tuple[str, Path, str]]:
    """(where, citing file, reference) for every `.md` reference outside generated output."""
    found = []
    for citing in _scanned_files():
        text = citing.read_text(encoding="utf-8", errors="replace")
        for match in REFERENCE.finditer(text):
            reference = match.group(1)
            if reference in GENERATED:
                continue
            found.append((_where(citing, text, match.start()), citing, reference))
    return found


def _sections(document: Path) -> tuple[list[str], set[str]]:
    """The names a reference may cite (headings and bold phrases), and the section numbers."""
    text = document.read_text(encoding="utf-8")
    names = [name.lower() for name in HEADING.findall(text) + BOLD.findall(text)]
    return names, set(NUMBERED_HEADING.findall(text))


def test_the_scan_finds_the_docs_the_code_cites() -> None:
    cited = {reference for _, _, reference in _references()}
    # A scan that silently matched nothing would pass whatever the tree says.
    assert {"docs/API.md", "docs/MONEY.md", "docs/SCORING.md"} <= cited


def test_every_referenced_markdown_file_is_in_the_repository() -> None:
    dangling = [
        f"{where}: {reference}"
        for where, citing, reference in _references()
        if _resolve(citing, reference) is None
    ]
    assert not dangling, "references to Markdown files that are not in the repository:\n" + (
        "\n".join(dangling)
    )


@pytest.mark.parametrize("stem", ["API", "MONEY", "SCORING"])
def test_the_specifications_live_in_docs(stem: str) -> None:
    document = ROOT / "docs" / (stem + ".md")
    assert document.is_file()
    # Each says it is the project's own copy, as built, not the design it started from.
    assert "as built" in document.read_text(encoding="utf-8")[:1500]


def test_every_cited_section_exists() -> None:
    missing = []
    for citing in _scanned_files():
        text = citing.read_text(encoding="utf-8", errors="replace")
        for pattern in (QUOTED_SECTION, BARE_SECTION):
            for match in pattern.finditer(text):
                document = _resolve(citing, match.group(1))
                if document is None:
                    continue  # reported by the test above
                names, _ = _sections(document)
                wanted = " ".join(match.group(2).split()).lower()
                if not any(wanted in name for name in names):
                    where = _where(citing, text, match.start())
                    missing.append(f'{where}: {match.group(1)}, "{match.group(2)}"')
        for match in NUMBERED_SECTION.finditer(text):
            document = _resolve(citing, match.group(1))
            if document is None:
                continue
            _, numbers = _sections(document)
            for number in re.findall(r"\d+", match.group(2)):
                if number not in numbers:
                    where = _where(citing, text, match.start())
                    missing.append(f"{where}: {match.group(1)} section {number}")
    assert not missing, "references to sections that do not exist:\n" + "\n".join(missing)
