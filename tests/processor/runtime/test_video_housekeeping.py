"""A partition's housekeeping for Video sessions: the empty rule fires on the partition's
clock, an ended instance is let go after its retention, and every record is routed by the
source-route header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from processor.runtime.partition import ExpiryRules, Output, PartitionState
from schemas.codec import decode_event, decode_state
from schemas.events import SessionEndedEvent
from schemas.topics import TopicNames
from tests.processor.video_builders import (
    SESSION_ID,
    T0,
    Delivery,
    connected,
    disconnected,
    session_created,
)

TOPICS = TopicNames.with_prefix("t.")
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True)
class Record:
    value: bytes | None
    timestamp: int
    offset: int
    headers: Sequence[tuple[str, bytes]]
    topic: str = TOPICS.raw
    partition: int = 0
    key: bytes | None = SESSION_ID.encode()


def fed(state: PartitionState, deliveries: list[Delivery], first_offset: int = 0) -> None:
    for number, (body, route) in enumerate(deliveries):
        offset = first_offset + number
        # Received when it happened (the builders' times are offsets from T0).
        state.process(Record(body, T0 + offset, offset, [("source-route", route)]))


RULES = ExpiryRules(idle_timeout_ms=3 * HOUR_MS, retention_ms=HOUR_MS, empty_end_ms=10 * MINUTE_MS)


def ended(outputs: list[Output]) -> list[SessionEndedEvent]:
    events = [decode_event(o.value) for o in outputs if o.topic == TOPICS.sessions and o.value]
    return [event for event in events if isinstance(event, SessionEndedEvent)]


def test_a_video_session_empty_for_long_enough_ends_on_the_partition_clock() -> None:
    state = PartitionState(0, TOPICS, room_dedup_capacity=10, expiry=RULES)
    fed(state, [connected(0, "c1"), disconnected(MINUTE_MS, "c1")])
    state.drain()
    state.expire(T0 + 5 * MINUTE_MS)
    assert ended(state.drain().outputs) == []  # empty for 4 minutes only
    state.expire(T0 + 12 * MINUTE_MS)
    batch = state.drain()
    (summary,) = [event.summary for event in ended(batch.outputs)]
    assert (summary.ended_by, summary.duration_s) == ("empty", 60.0)
    (state_record,) = [o for o in batch.outputs if o.topic == TOPICS.session_state]
    assert state_record.value is not None
    assert decode_state(state_record.value).status == "ended"


def test_an_ended_instance_is_let_go_after_its_retention_and_its_records_tombstoned() -> None:
    state = PartitionState(0, TOPICS, room_dedup_capacity=10, expiry=RULES)
    fed(state, [connected(0, "c1"), disconnected(MINUTE_MS, "c1")])
    state.expire(T0 + 12 * MINUTE_MS)
    fed(state, [session_created(20 * MINUTE_MS), connected(20 * MINUTE_MS, "c2")], first_offset=2)
    state.drain()
    session = state.sessions[SESSION_ID]
    assert session.instance == 2
    assert session.previous is not None
    # The first instance's last callback was received at T0 + 1 ms: past an hour's retention
    # two hours later, while the second instance is active.
    state.expire(T0 + 2 * HOUR_MS)
    batch = state.drain()
    assert state.sessions[SESSION_ID].previous is None
    tombstoned = [o for o in batch.outputs if o.topic == TOPICS.changelog and o.value is None]
    assert tombstoned
    assert state.sessions[SESSION_ID].status == "active"
