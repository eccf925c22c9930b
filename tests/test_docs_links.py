"""Every relative link of the documentation resolves: README.md and every docs/*.md.

A link ``[text](path)`` or ``[text](path#anchor)`` (or a reference definition ``[ref]: path``)
that is not a URL must name a file or folder of the repository, relative to the document; an
``#anchor`` into a Markdown file must be the GitHub anchor of one of its headings, and a bare
``#anchor`` one of the document's own. Links inside fenced code blocks and inline code are not
links. Alerts and other documents link to these anchors, so a renamed heading fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.markdown import anchors_of, github_slug, prose_lines

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_INLINE_LINK = re.compile(
    r"""
    !?\[ (?: [^\[\]\n] | \n(?![ \t]*\n) | \[[^\[\]]*\] )* \]   # [text], within a paragraph
    \( \s*
    ( <[^>]*> | [^()\s]* (?:\([^()\s]*\)[^()\s]*)* )            # the target
    (?: \s+ (?: "[^"]*" | '[^']*' | \([^)]*\) ) )?               # an optional title
    \s* \)
    """,
    re.VERBOSE,
)
_REFERENCE = re.compile(r"^ {0,3}\[(?!\^)[^\]]+\]:[ \t]*(<[^>]*>|\S+)", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class Link:
    document: Path
    line: int
    target: str

    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}: {self.target}"


def documents() -> list[Path]:
    """README.md and every Markdown file of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """``text`` with fenced code blocks and inline code blanked out, lines where they were."""
    lines = text.splitlines()
    kept = [""] * len(lines)
    for number, line in prose_lines(text):
        kept[number - 1] = _INLINE_CODE.sub(lambda code: " " * len(code.group(0)), line)
    return "\n".join(kept)


def links_in(document: Path) -> list[Link]:
    """Every link of ``document`` that is not a URL (``https:``, ``mailto:``, ...); a link's
    text may run over several lines."""
    text = prose(document.read_text(encoding="utf-8"))
    matches = [*_INLINE_LINK.finditer(text), *_REFERENCE.finditer(text)]
    found: list[Link] = []
    for match in sorted(matches, key=lambda match: match.start(1)):
        target = match.group(1).strip().removeprefix("<").removesuffix(">").strip()
        if target and not _SCHEME.match(target):
            line = text.count("\n", 0, match.start(1)) + 1
            found.append(Link(document, line, target))
    return found


def problem(link: Link) -> str | None:
    """Why ``link`` does not resolve, or None."""
    path_part, _, anchor = link.target.partition("#")
    path_part = unquote(path_part)
    if path_part:
        target = (link.document.parent / path_part).resolve()
        if not target.is_relative_to(ROOT):
            return "outside the repository"
        if not target.exists():
            return "no such file"
    else:
        target = link.document
    if (
        anchor
        and target.is_file()
        and target.suffix == ".md"
        and unquote(anchor) not in anchors_of(target)
    ):
        return f"no heading with the anchor #{anchor} in {target.relative_to(ROOT)}"
    return None


def test_the_documents_exist_and_have_links() -> None:
    assert README.is_file()
    docs = documents()
    assert len(docs) > 2, docs
    assert links_in(README), "README.md has no relative links"


def test_every_relative_link_resolves() -> None:
    broken = [
        f"{link.where()} ({why})"
        for document in documents()
        for link in links_in(document)
        if (why := problem(link)) is not None
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_links_every_document() -> None:
    linked = {
        (README.parent / unquote(link.target.partition("#")[0])).resolve()
        for link in links_in(README)
        if link.target.partition("#")[0]
    }
    unlinked = [str(path.relative_to(ROOT)) for path in documents()[1:] if path not in linked]
    assert not unlinked, f"README.md does not link to: {unlinked}"


RUNBOOKS = (
    "Lag rising",
    "DLQ filling",
    "A partition failed",
    "Processor not ready",
    "Ingest answering 503",
    "Ingest 5xx",
    "No callbacks arriving",
    "Broker loss",
    "Scaling",
    "Re-processing",
)
"""The runbooks of docs/operations.md: alerts link to them by their anchors."""
OPERATIONS = DOCS / "operations.md"
ALERTS = ROOT / "deploy" / "helm" / "meetings" / "templates" / "prometheusrule.yaml"


def test_the_runbooks_keep_their_headings() -> None:
    headings = [
        line.removeprefix("### ")
        for _, line in prose_lines(OPERATIONS.read_text(encoding="utf-8"))
        if line.startswith("### ")
    ]
    missing = [runbook for runbook in RUNBOOKS if runbook not in headings]
    assert not missing, f"runbooks missing from {OPERATIONS.name}: {missing}"
    anchors = anchors_of(OPERATIONS)
    assert {github_slug(runbook) for runbook in RUNBOOKS} <= anchors
    repeated = [runbook for runbook in RUNBOOKS if f"{github_slug(runbook)}-1" in anchors]
    assert not repeated, f"headings repeated, so their anchors are not the runbooks': {repeated}"


def test_every_alert_links_an_existing_runbook() -> None:
    linked = re.findall(r"runbook_url:.*#([A-Za-z0-9_-]+)", ALERTS.read_text(encoding="utf-8"))
    assert linked, f"no runbook_url in {ALERTS.relative_to(ROOT)}"
    unknown = sorted(set(linked) - anchors_of(OPERATIONS))
    assert not unknown, f"alerts link to runbooks {OPERATIONS.name} does not have: {unknown}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Processor: `python -m processor`", "processor-python--m-processor"),
        ("Settings shared by both services", "settings-shared-by-both-services"),
        ("4.11 `SessionState` on `x.session-state`", "411-sessionstate-on-xsession-state"),
        ("Ingest answering 503", "ingest-answering-503"),
        ("Re-processing", "re-processing"),
        (
            "Dependencies: ranges, the lock, the internals we rely on",
            "dependencies-ranges-the-lock-the-internals-we-rely-on",
        ),
        ("Three brokers: `docker-compose.cluster.yml`", "three-brokers-docker-composeclusteryml"),
        ("See [the contract](contract.md) now", "see-the-contract-now"),
        (
            "7.4 People, not connections: `VIDEO_PARTICIPANT_KEY`",
            "74-people-not-connections-video_participant_key",
        ),
    ],
)
def test_github_slug(heading: str, anchor: str) -> None:
    assert github_slug(heading) == anchor


def test_repeated_headings_are_numbered(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text("# Scaling\n\n## Scaling\n\n### Scaling\n", encoding="utf-8")
    assert anchors_of(document) == {"scaling", "scaling-1", "scaling-2"}


def test_code_is_not_searched_for_links_or_headings(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "# Title\n\n"
        "```console\n# not a heading\n[x](missing.md)\n```\n\n"
        "~~~~\n```\n[y](missing.md)\n~~~~\n\n"
        "Inline `[z](missing.md)` is code; [a](https://example.com/x) and\n"
        '[b](mailto:someone@example.com) are URLs; [c](other.md#part "title") and\n'
        "![d](<img dir/pic.png>) and [e](#title) are links.\n\n"
        "[ref]: ../somewhere.md\n[^1]: a footnote\n\n"
        "A link whose text [runs over\ntwo lines](two.md) is one.\n",
        encoding="utf-8",
    )
    assert anchors_of(document) == {"title"}
    assert [link.target for link in links_in(document)] == [
        "other.md#part",
        "img dir/pic.png",
        "#title",
        "../somewhere.md",
        "two.md",
    ]


def test_broken_links_are_named() -> None:
    document = DOCS / "operations.md"
    missing = Link(document, 1, "no-such-file.md")
    wrong_anchor = Link(document, 2, "../README.md#no-such-heading")
    own_anchor = Link(document, 3, "#runbooks")
    assert problem(missing) == "no such file"
    assert problem(wrong_anchor) == "no heading with the anchor #no-such-heading in README.md"
    assert problem(own_anchor) is None
    assert problem(Link(document, 4, "../../outside.md")) == "outside the repository"
