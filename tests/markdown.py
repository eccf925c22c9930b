"""GitHub's reading of Markdown where the tests need it: the lines outside fenced code blocks,
and the anchors GitHub gives headings (links into the documents and the alerts' runbook links
point at them)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_LINK_TEXT = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every line outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)
                continue
            yield number, line
        elif opening and _closes(fence, opening.group(1), line):
            fence = None


def _closes(fence: str, marker: str, line: str) -> bool:
    """Whether ``line``, starting with ``marker``, closes the block ``fence`` opened: the same
    character, at least as many, and nothing after."""
    return (
        marker[0] == fence[0]
        and len(marker) >= len(fence)
        and not line.strip()[len(marker) :].strip()
    )


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: the text as rendered (links become their text, markup and
    tags go), lower case, keeping letters, digits, spaces, ``-`` and ``_``; spaces become
    ``-``."""
    text = _LINK_TEXT.sub(r"\1", heading)
    text = _HTML_TAG.sub("", text)
    kept = "".join(
        char
        for char in text.lower()
        if char in " -_" or unicodedata.category(char)[0] in ("L", "N")
    )
    return kept.replace(" ", "-")


@cache
def anchors_of(document: Path) -> frozenset[str]:
    """The anchors GitHub gives the headings of ``document``; a repeated heading gets ``-1``,
    ``-2``, ... after the first."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(document.read_text(encoding="utf-8")):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        slug = github_slug(heading.group(2) or "")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(anchors)
