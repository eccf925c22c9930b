"""What a partition's commit writes for its sessions: state, changelog, tombstones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from processor.engine import restore_sessions
from processor.runtime.partition import ExpiryRules, Output, PartitionState
from schemas.codec import decode_event, decode_state
from schemas.events import ParticipantAttendanceEvent, SessionEndedEvent
from schemas.timestamps import format_epoch_ms
from schemas.topics import TopicNames
from tests.processor.builders import SESSION_ID, T0

TOPICS = TopicNames.with_prefix("t.")
HOUR_MS = 3_600_000
RULES = ExpiryRules(idle_timeout_ms=HOUR_MS, retention_ms=HOUR_MS)


@dataclass(frozen=True)
class Record:
    value: bytes | None
    timestamp: int
    offset: int
    topic: str = TOPICS.raw
    partition: int = 3
    key: bytes | None = SESSION_ID.encode()
    headers: Sequence[tuple[str, bytes]] = ()


def body(event: str, **fields: object) -> bytes:
    return orjson.dumps({"event": event, "session_id": SESSION_ID, "room_id": "r", **fields})


def person(event: str, participant_id: str) -> bytes:
    return body(event, participant_id=participant_id, name="N", is_host=False)


def ended() -> bytes:
    return body("session:ended", started_at="2021-11-02T15:53:28.000Z", ended_at=_at(60_000))


def _at(offset_ms: int) -> str:
    return format_epoch_ms(T0 + offset_ms)


def fed(*bodies: bytes, max_listed: int = 1000) -> PartitionState:
    state = PartitionState(
        3, TOPICS, room_dedup_capacity=10, max_listed_participants=max_listed, expiry=RULES
    )
    for offset, value in enumerate(bodies):
        state.process(Record(value=value, timestamp=T0 + 1_000 * offset, offset=offset))
    return state


def on(outputs: list[Output], topic: str) -> list[Output]:
    return [output for output in outputs if output.topic == topic]


def test_a_commit_writes_the_bounded_state_and_the_changelog_to_the_same_partition() -> None:
    state = fed(*(person("participant:joined", f"p{number}") for number in range(5)), max_listed=2)
    outputs = state.drain().outputs

    [snapshot] = on(outputs, TOPICS.session_state)
    assert snapshot.partition == 3
    assert snapshot.value is not None
    public = decode_state(snapshot.value)
    assert (len(public.active_participants), public.active_count) == (2, 5)
    assert public.active_participants_truncated
    changelog = on(outputs, TOPICS.changelog)
    assert {output.partition for output in changelog} == {3}
    [restored] = restore_sessions((o.key or b"", o.value or b"") for o in changelog)
    assert restored == state.sessions[SESSION_ID]


def test_a_dropped_session_settles_its_revision_then_tombstones_everything() -> None:
    crowd = [person("participant:joined", f"p{number}") for number in range(130)]
    # 130 ids: a revision is considered every 2 late changes, so this one late left waits.
    state = fed(*crowd, ended())
    late_left = person("participant:left", "p0")
    state.process(Record(value=late_left, timestamp=T0 + 30_000, offset=len(crowd) + 1))
    written = state.drain().outputs
    assert len(on(written, TOPICS.sessions)) == 1
    state.expire(T0 + 10 * HOUR_MS)
    outputs = state.drain().outputs

    [revision] = [decode_event(o.value or b"") for o in on(outputs, TOPICS.sessions)]
    assert isinstance(revision, SessionEndedEvent)
    assert revision.summary.revision == 2
    assert SESSION_ID not in state.sessions
    assert [o.value for o in on(outputs, TOPICS.session_state)] == [None]
    changelog_keys = {o.key for o in on(written, TOPICS.changelog)}
    assert {o.key for o in on(outputs, TOPICS.changelog) if o.value is None} >= changelog_keys


def test_a_session_back_after_its_tombstone_overwrites_it_in_the_same_commit() -> None:
    state = fed(person("participant:joined", "a"), ended())
    state.drain()
    state.expire(T0 + 10 * HOUR_MS)
    state.process(
        Record(value=person("participant:joined", "b"), timestamp=T0 + 10 * HOUR_MS, offset=9)
    )
    outputs = on(state.drain().outputs, TOPICS.changelog)

    latest: dict[bytes, bytes | None] = {}
    for output in outputs:
        latest[output.key or b""] = output.value
    [revived] = restore_sessions((k, v) for k, v in latest.items() if v is not None)
    assert list(revived.participants) == ["b"]


def test_the_summary_and_its_attendance_reports_go_to_their_topics() -> None:
    state = fed(person("participant:joined", "a"), person("participant:joined", "b"), ended())
    outputs = state.drain().outputs

    [summary] = [decode_event(o.value or b"") for o in on(outputs, TOPICS.sessions)]
    assert isinstance(summary, SessionEndedEvent)
    participants = [decode_event(o.value or b"") for o in on(outputs, TOPICS.participants)]
    reports = [e for e in participants if isinstance(e, ParticipantAttendanceEvent)]
    assert [(r.participant_id, r.revision) for r in reports] == [("a", 1), ("b", 1)]
    assert {o.key for o in on(outputs, TOPICS.participants)} == {SESSION_ID.encode()}


def test_expiry_looks_at_a_slice_of_the_sessions_per_check_and_covers_them_all() -> None:
    state = PartitionState(3, TOPICS, room_dedup_capacity=10, expiry=RULES)
    for number in range(1_200):
        value = orjson.dumps(
            {"event": "session:started", "session_id": f"s{number}", "room_id": "r",
             "started_at": _at(0)}
        )  # fmt: skip
        # The oldest session last: the pass reaches it in its third slice.
        received = T0 + (0 if number == 1_199 else 5 * HOUR_MS)
        state.process(Record(value=value, timestamp=received, offset=number, key=None))
    state.drain()
    now = T0 + 5 * HOUR_MS + 1_000

    state.expire(now, budget=500)
    state.expire(now, budget=500)
    oldest = state.sessions["s1199"]
    assert oldest.status == "active"  # not looked at yet
    assert state.active_sessions == 0  # no pass complete yet
    state.expire(now, budget=500)
    assert oldest.timed_out_at is not None  # timed out, and 5 h idle: past its retention too
    assert "s1199" not in state.sessions
    state.expire(now, budget=500)  # a new pass
    assert state.active_sessions == 1_199
