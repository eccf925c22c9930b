"""docs/contract.md names everything the published contract declares, and its links resolve.

Every topic of ``schemas/topics.py`` (by its default name), every derived event type, every field
of a published derived-event schema or of ``SessionState``, the raw callbacks' fields, the record
headers, the DLQ reasons and the callback routes must appear in the document as a backticked
name; every relative link must point to an existing file (and, into a Markdown file, to an
existing heading).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import (
    CALLBACK_NAME,
    CONTRACT_DIR,
    SESSION_STATE_NAME,
    VIDEO_CALLBACK_NAME,
    schema_file_name,
)
from schemas.decoding import FailureReason
from schemas.events import DERIVED_EVENT_TYPES, event_type_name
from schemas.sources import MEETINGS_ROUTES, VIDEO_ROUTES
from schemas.state import SessionState
from schemas.topics import (
    ALL_TOPICS,
    DEFAULT_PREFIX,
    HEADER_CONTENT_TYPE,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_ROUTE,
    HEADER_SOURCE_TOPIC,
)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "contract.md"
SECTIONS = range(1, 8)
"""``contract §1`` to ``§7``: the numbered top-level sections code cites."""
RAW_SCHEMAS = (schema_file_name(CALLBACK_NAME), schema_file_name(VIDEO_CALLBACK_NAME))
"""The published schemas of raw callbacks (input); every other one describes output."""


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def backticked(doc: str) -> set[str]:
    """Every inline-code span of the document (`name`)."""
    return set(re.findall(r"`([^`\n]+)`", doc))


def missing_from(doc: str, names: Iterable[str]) -> list[str]:
    present = backticked(doc)
    return sorted({name for name in names if name not in present})


def published_schemas() -> dict[str, Any]:
    """Relative file name (``json/session.ended.schema.json``) -> the committed schema."""
    return {
        str(path.relative_to(CONTRACT_DIR)): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((CONTRACT_DIR / "json").glob("*.schema.json"))
    }


def output_schemas() -> dict[str, Any]:
    """The published schemas of derived events and of ``SessionState``."""
    return {name: s for name, s in published_schemas().items() if name not in RAW_SCHEMAS}


def property_names(node: Any) -> Iterator[str]:
    """Every property name declared anywhere in a JSON Schema (``$defs`` included)."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            yield from properties
        for value in node.values():
            yield from property_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from property_names(item)


def type_tags(node: Any) -> Iterator[str]:
    """The values a schema allows for a ``type`` property (a derived event's tag)."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            tag = properties.get("type")
            if isinstance(tag, dict):
                yield from (value for value in tag.get("enum", ()) if isinstance(value, str))
        for value in node.values():
            yield from type_tags(value)
    elif isinstance(node, list):
        for item in node:
            yield from type_tags(item)


def test_the_contract_files_this_test_reads_exist() -> None:
    schemas = published_schemas()
    assert schema_file_name(SESSION_STATE_NAME) in schemas, f"no SessionState schema in {schemas}"
    for raw in RAW_SCHEMAS:
        assert raw in schemas, f"no raw callback schema {raw} in {sorted(schemas)}"
    assert len(output_schemas()) == len(DERIVED_EVENT_TYPES) + 1, sorted(output_schemas())


def test_sections_1_to_7_are_numbered_headings(doc: str) -> None:
    headings = re.findall(r"^## (\d+)\. ", doc, flags=re.MULTILINE)
    missing = [str(n) for n in SECTIONS if str(n) not in headings]
    assert not missing, f"docs/contract.md has no '## N. ' heading for sections {missing}"
    assert headings == sorted(headings, key=int), f"sections out of order: {headings}"


def test_every_topic_is_named(doc: str) -> None:
    names = {topic.name_under(DEFAULT_PREFIX) for topic in ALL_TOPICS}
    assert len(names) == len(ALL_TOPICS)
    missing = missing_from(doc, names)
    assert not missing, f"topics missing from docs/contract.md (as `name`): {missing}"


def test_every_derived_event_type_is_named(doc: str) -> None:
    declared = {event_type_name(event_type) for event_type in DERIVED_EVENT_TYPES}
    published = {tag for schema in output_schemas().values() for tag in type_tags(schema)}
    assert published == declared, (
        f"published tags {sorted(published)} differ from DERIVED_EVENT_TYPES {sorted(declared)}: "
        "run `python -m schemas`"
    )
    missing = missing_from(doc, declared | published)
    assert not missing, f"derived event types missing from docs/contract.md: {missing}"


@pytest.mark.parametrize("schema_file", sorted(output_schemas()))
def test_every_field_of_a_published_output_schema_is_named(doc: str, schema_file: str) -> None:
    fields = set(property_names(output_schemas()[schema_file]))
    assert fields, f"{schema_file} declares no fields"
    missing = missing_from(doc, fields)
    assert not missing, f"fields of {schema_file} missing from docs/contract.md: {missing}"


def test_every_session_state_field_is_named(doc: str) -> None:
    fields = set(SessionState.__struct_fields__)
    missing = missing_from(doc, fields)
    assert not missing, f"SessionState fields missing from docs/contract.md: {missing}"


@pytest.mark.parametrize("schema_file", RAW_SCHEMAS)
def test_every_field_of_a_raw_callback_is_named(doc: str, schema_file: str) -> None:
    fields = set(property_names(published_schemas()[schema_file]))
    assert fields, f"{schema_file} declares no fields"
    missing = missing_from(doc, fields)
    assert not missing, f"callback fields of {schema_file} missing from docs/contract.md: {missing}"


def test_every_header_dlq_reason_and_route_is_named(doc: str) -> None:
    headers = {
        HEADER_RECEIVED_AT,
        HEADER_SOURCE_ROUTE,
        HEADER_REQUEST_ID,
        HEADER_CONTENT_TYPE,
        HEADER_DLQ_REASON,
        HEADER_DLQ_ERROR,
        HEADER_SOURCE_TOPIC,
        HEADER_SOURCE_PARTITION,
        HEADER_SOURCE_OFFSET,
    }
    reasons = {reason.value for reason in FailureReason}
    present = backticked(doc)
    routes = {
        route
        for route in (*MEETINGS_ROUTES, *VIDEO_ROUTES)
        if f"POST {route}" not in present and route not in present
    }
    missing = missing_from(doc, headers | reasons) + sorted(routes)
    assert not missing, f"headers, DLQ reasons or routes missing from docs/contract.md: {missing}"


def test_every_published_contract_file_is_linked(doc: str) -> None:
    targets = {(DOC.parent / target).resolve() for target, _ in relative_links(doc)}
    schemas = (CONTRACT_DIR / "json").glob("*.schema.json")
    published = {path.resolve() for path in (*schemas, CONTRACT_DIR / "asyncapi.json")}
    unlinked = sorted(str(path.relative_to(ROOT)) for path in published - targets)
    assert not unlinked, f"contract files docs/contract.md does not link: {unlinked}"


def test_every_relative_link_resolves(doc: str) -> None:
    links = relative_links(doc)
    assert links, "docs/contract.md has no relative links"
    broken = []
    for target, anchor in links:
        path = DOC if not target else (DOC.parent / target).resolve()
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path):
            broken.append(f"{target}#{anchor}: no such heading")
    assert not broken, f"broken links in docs/contract.md: {broken}"


def relative_links(doc: str) -> list[tuple[str, str]]:
    """``(path, anchor)`` of every Markdown link that is not a URL (``path`` empty: this file)."""
    links = []
    for target in re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", doc):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        links.append((path, anchor))
    return links


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (code blocks skipped)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or heading is None:
            continue
        slug = github_slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def github_slug(heading: str) -> str:
    """Lower case; keep letters, digits, spaces, ``-`` and ``_``; spaces become ``-``."""
    kept = "".join(
        char
        for char in heading.lower()
        if char in " -_" or unicodedata.category(char)[0] in ("L", "N")
    )
    return kept.replace(" ", "-")


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Processor: `python -m processor`", "processor-python--m-processor"),
        ("Settings shared by both services", "settings-shared-by-both-services"),
        ("4. Kafka topics", "4-kafka-topics"),
        ("4.11 `SessionState`, the state", "411-sessionstate-the-state"),
    ],
)
def test_github_slug(heading: str, anchor: str) -> None:
    assert github_slug(heading) == anchor
