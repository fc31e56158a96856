"""No reference in shipped text points at a file that does not ship.

The code was written against research notes (the KIS API facts, the endpoint table, the KRX domain
notes, a design brief) that live outside this repository. A docstring that says "facts §5.3" sends
a reader of the wheel or of the API docs nowhere, so the sources, docs, README files and examples
must say what they mean in their own words or link a page that ships (``docs/*.md``).
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Every file a reader of the distributions or of the built docs sees.
SCANNED = sorted(
    [
        *(ROOT / "src").rglob("*.py"),
        *DOCS.rglob("*.md"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "examples").rglob("*.md"),
        *(ROOT / "dists").rglob("*.md"),
        *(ROOT / "deploy").rglob("*.md"),
        ROOT / "README.md",
    ]
)

#: Names and shorthands of the unshipped notes, and the source tags of their legend.
FORBIDDEN = re.compile(
    r"kis-api-facts|kis-endpoints|kis-websocket-facts|krx-domain|design[- ]brief"
    r"|\bfacts?\s*(§|file|files\b|silent|say|leave)"
    r"|\[(OTA(-PM)?|KAE|P-RATE|P-TOKFAQ|P-AFFIL|XLSX-T|PYKIS|MOJ|PK#\d+|KA#\d+|3P)\]"
    r"|\bopen question \d",
    re.IGNORECASE,
)
#: ``name.md`` mentioned in text, and a section sign.
MD_NAME = re.compile(r"(?<![\w/.-])(?:docs/)?([A-Za-z0-9_-]+\.md)\b")
SECTION = "§"
#: Markdown links to local files: ``[text](target)``.
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

SHIPPED_MD = {p.name for p in DOCS.glob("*.md")} | {"README.md", "CHANGELOG.md"}


def _rel(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _lines(path: pathlib.Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def test_the_scan_covers_the_sources_and_docs() -> None:
    names = {_rel(p) for p in SCANNED}
    assert "src/kisclient/_core.py" in names
    assert "docs/architecture.md" in names
    assert "README.md" in names
    assert len(names) > 50


@pytest.mark.parametrize(
    "text",
    [
        "limits (facts §7)",
        "see ``kis-api-facts.md`` §5",
        "design brief §3.4",
        "the facts file gives these meanings",
        "(facts silent)",
        "EGW00205 ([KAE]; [3P])",
        "open question 4",
        "Field lists follow krx-domain.md",
    ],
)
def test_the_patterns_catch_the_old_references(text: str) -> None:
    assert FORBIDDEN.search(text)


@pytest.mark.parametrize(
    "text",
    ["Field names are facts; nothing here", "Static facts about *code*", "see docs/recovery.md"],
)
def test_the_patterns_leave_plain_words_alone(text: str) -> None:
    assert not FORBIDDEN.search(text)


def test_no_reference_to_unshipped_notes() -> None:
    found = [
        f"{_rel(path)}:{n}: {line.strip()}"
        for path in SCANNED
        for n, line in _lines(path)
        if FORBIDDEN.search(line)
    ]
    assert found == []


def test_every_section_sign_names_a_shipped_page() -> None:
    """A "§" is only meaningful next to the page it points into (e.g. ``recovery.md §2``)."""
    found = [
        f"{_rel(path)}:{n}: {line.strip()}"
        for path in SCANNED
        for n, line in _lines(path)
        if SECTION in line and not any(m in SHIPPED_MD for m in MD_NAME.findall(line))
    ]
    assert found == []


def test_every_mentioned_markdown_page_exists() -> None:
    found = [
        f"{_rel(path)}:{n}: {name}"
        for path in SCANNED
        for n, line in _lines(path)
        for name in MD_NAME.findall(line)
        if name not in SHIPPED_MD
    ]
    assert found == []


def test_every_local_markdown_link_resolves() -> None:
    found = []
    for path in SCANNED:
        if path.suffix != ".md":
            continue
        for n, line in _lines(path):
            for target in MD_LINK.findall(line):
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not (path.parent / target).exists():
                    found.append(f"{_rel(path)}:{n}: {target}")
    assert found == []
