"""What two sets of derived topics hold, compared record by record; no Kafka here.

Derived events are matched by ``event_id``, then compared by content (the parsed JSON value and
the key: a difference in field order or spacing is not a difference). Session state is compared
as each session's latest ``SessionState`` (a tombstoned session is absent). DLQ records are
matched by the raw record they came from (``source-partition``/``source-offset``) and compared
by body, reason and error.

Memory is bounded by passes: pass *k* of *n* keeps only the ids whose hash is *k* modulo *n*,
so each pass holds about ``1/n`` of a topic's ids (``plan_passes``).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from dataclasses import dataclass, field

import msgspec
import orjson

EXAMPLES = 3
"""Ids listed per event type and kind of difference."""
UNREADABLE = "(unreadable)"
"""The type reported for a value that is not a derived event."""
STATE_TYPE = "SessionState"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record as compared: the type it is reported under and a digest of its content."""

    type: str
    digest: bytes


@dataclass(slots=True)
class TypeDiff:
    """One event type's outcome."""

    matching: int = 0
    only_a: int = 0
    only_b: int = 0
    differing: int = 0
    duplicated_a: int = 0
    """Ids seen more than once in A (extra copies: a duplicate a consumer must drop)."""
    duplicated_b: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return self.only_a + self.only_b + self.differing + self.duplicated_a + self.duplicated_b

    def example(self, kind: str, ident: str) -> None:
        listed = self.examples.setdefault(kind, [])
        if len(listed) < EXAMPLES:
            listed.append(ident)


@dataclass(slots=True)
class TopicDiff:
    """A topic pair's outcome, per event type (``SessionState`` for the state topic)."""

    suffix: str
    records_a: int = 0
    records_b: int = 0
    types: dict[str, TypeDiff] = field(default_factory=dict)

    def of(self, type_name: str) -> TypeDiff:
        found = self.types.get(type_name)
        if found is None:
            found = self.types[type_name] = TypeDiff()
        return found

    @property
    def differences(self) -> int:
        return sum(t.differences for t in self.types.values())


class _Envelope(msgspec.Struct):
    """The fields every derived event has that matching needs."""

    type: str
    event_id: str


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def content_digest(key: bytes | None, value: bytes, *extra: bytes) -> bytes:
    """A digest of the key and the parsed value (and any ``extra`` parts): equal exactly when
    they hold the same data, however the JSON was spelled."""
    hasher = hashlib.blake2b(digest_size=16)
    for part in (key or b"", _canonical(value), *extra):
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.digest()


def _canonical(value: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return value


def event_identity(value: bytes | None) -> tuple[str, str]:
    """``(event_id, type)`` of a derived event's value; an unreadable value is identified by
    its own bytes, so it is matched only by an identical one."""
    if value is not None:
        try:
            envelope = _ENVELOPE.decode(value)
        except msgspec.DecodeError:
            pass
        else:
            return envelope.event_id, envelope.type
    return f"unreadable:{hashlib.blake2b(value or b'', digest_size=8).hexdigest()}", UNREADABLE


def in_pass(ident: str, pass_number: int, passes: int) -> bool:
    return passes == 1 or zlib.crc32(ident.encode()) % passes == pass_number


def plan_passes(records: int, max_entries: int) -> int:
    """How many passes keep each pass's ids of one side within ``max_entries``."""
    return max(1, -(-records // max_entries))


@dataclass(slots=True)
class Side:
    """One side's records of one pass, by id."""

    entries: dict[str, Entry] = field(default_factory=dict)
    extra_copies: Counter[str] = field(default_factory=Counter)
    """Per type: records whose id was already seen (an identical copy or not)."""

    def add(self, ident: str, entry: Entry) -> None:
        if ident in self.entries:
            self.extra_copies[entry.type] += 1
        else:
            self.entries[ident] = entry


def compare_sides(a: Side, b: Side, into: TopicDiff) -> None:
    """Add one pass's outcome to ``into``."""
    for type_name, copies in a.extra_copies.items():
        into.of(type_name).duplicated_a += copies
    for type_name, copies in b.extra_copies.items():
        into.of(type_name).duplicated_b += copies
    for ident, entry in a.entries.items():
        other = b.entries.get(ident)
        outcome = into.of(entry.type)
        if other is None:
            outcome.only_a += 1
            outcome.example("only in A", ident)
        elif other.digest == entry.digest and other.type == entry.type:
            outcome.matching += 1
        else:
            outcome.differing += 1
            outcome.example("differing", ident)
    for ident, entry in b.entries.items():
        if ident not in a.entries:
            outcome = into.of(entry.type)
            outcome.only_b += 1
            outcome.example("only in B", ident)


class LatestStates:
    """Each session's latest state, fed in log order (a tombstone removes the session); holds
    a digest per session, not the state."""

    def __init__(self) -> None:
        self._latest: dict[str, bytes | None] = {}

    def add(self, key: bytes | None, value: bytes | None) -> None:
        if key is not None:
            digest = None if value is None else content_digest(None, value)
            self._latest[key.decode(errors="replace")] = digest

    def side(self) -> Side:
        side = Side()
        for session_id, digest in self._latest.items():
            if digest is not None:
                side.add(session_id, Entry(STATE_TYPE, digest))
        return side
