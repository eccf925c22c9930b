"""One comparison of two topic prefixes, topic by topic, pass by pass."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from schemas.topics import (
    DLQ,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    PARTICIPANTS,
    RECORDINGS,
    ROOMS,
    SESSION_STATE,
    SESSIONS,
    TopicContract,
)
from tools.diff.compare import (
    Entry,
    LatestStates,
    Side,
    TopicDiff,
    compare_sides,
    content_digest,
    event_identity,
    in_pass,
    plan_passes,
)
from tools.diff.reading import TopicReader
from tools.tail.lines import Record


class Kind(enum.Enum):
    EVENTS = "derived events, matched by event_id"
    STATE = "the latest SessionState of each session"
    DLQ = "dead letters, matched by the raw record they came from"


COMPARED: tuple[tuple[TopicContract, Kind], ...] = (
    (SESSIONS, Kind.EVENTS),
    (PARTICIPANTS, Kind.EVENTS),
    (RECORDINGS, Kind.EVENTS),
    (ROOMS, Kind.EVENTS),
    (SESSION_STATE, Kind.STATE),
    (DLQ, Kind.DLQ),
)


class MissingTopicError(Exception):
    """A topic exists under one prefix only: nothing to compare it with."""


@dataclass(frozen=True, slots=True)
class Prefixes:
    a: str
    b: str


Say = Callable[[str], None]


async def compare_prefixes(
    reader: TopicReader, prefixes: Prefixes, *, max_entries: int, say: Say
) -> list[TopicDiff]:
    """Every compared topic present under both prefixes (absent under both: skipped)."""
    existing = await reader.topics()
    outcomes = []
    for contract, kind in COMPARED:
        name_a, name_b = contract.name_under(prefixes.a), contract.name_under(prefixes.b)
        present = (name_a in existing, name_b in existing)
        if present == (False, False):
            say(f"{contract.suffix}: under neither prefix, skipped")
            continue
        if present != (True, True):
            missing = name_b if present[0] else name_a
            raise MissingTopicError(f"topic {missing} does not exist")
        outcomes.append(
            await _compare_topic(reader, contract, kind, name_a, name_b, max_entries, say)
        )
    return outcomes


async def _compare_topic(
    reader: TopicReader,
    contract: TopicContract,
    kind: Kind,
    name_a: str,
    name_b: str,
    max_entries: int,
    say: Say,
) -> TopicDiff:
    size = max(await reader.size(name_a), await reader.size(name_b))
    passes = plan_passes(size, max_entries)
    outcome = TopicDiff(contract.suffix)
    say(
        f"{contract.suffix}: {kind.value}; up to {size:,} records a side"
        + (f", in {passes} passes" if passes > 1 else "")
    )
    for number in range(passes):
        side_a, outcome.records_a = await _read_side(reader, name_a, kind, number, passes, say)
        side_b, outcome.records_b = await _read_side(reader, name_b, kind, number, passes, say)
        compare_sides(side_a, side_b, outcome)  # every pass reads every record: counts agree
    return outcome


async def _read_side(
    reader: TopicReader, topic: str, kind: Kind, number: int, passes: int, say: Say
) -> tuple[Side, int]:
    side = Side()
    states = LatestStates()

    def visit(record: Record) -> None:
        value = record.value
        if kind is Kind.EVENTS:
            ident, type_name = event_identity(value)
            if in_pass(ident, number, passes):
                side.add(ident, Entry(type_name, content_digest(record.key, value or b"")))
        elif kind is Kind.STATE:
            if record.key is not None and in_pass(
                record.key.decode(errors="replace"), number, passes
            ):
                states.add(record.key, value)
        else:
            headers = dict(record.headers)
            ident = (
                f"{headers.get(HEADER_SOURCE_PARTITION, b'?').decode(errors='replace')}@"
                f"{headers.get(HEADER_SOURCE_OFFSET, b'?').decode(errors='replace')}"
            )
            if in_pass(ident, number, passes):
                reason = headers.get(HEADER_DLQ_REASON, b"")
                digest = content_digest(
                    record.key, value or b"", reason, headers.get(HEADER_DLQ_ERROR, b"")
                )
                side.add(ident, Entry(f"dlq: {reason.decode(errors='replace')}", digest))

    def progress(read: int) -> None:
        say(
            f"  {topic}: {read:,} records read"
            + (f" (pass {number + 1}/{passes})" if passes > 1 else "")
        )

    read = await reader.scan(topic, visit, progress)
    return (states.side() if kind is Kind.STATE else side), read
