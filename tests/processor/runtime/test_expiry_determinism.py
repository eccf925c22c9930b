"""Where the expiry pass runs in the stream changes nothing derived (contract §5.5).

Live processing runs the pass on the wall clock whenever a tick comes; a replay runs it on
stream time at other points of the same records. Because a record is applied only after the
expiry and retention rules have been applied to its own session at the partition's stream time,
both derive the same events: here, one run with a pass after every record and one with a single
pass at the end publish the same bytes, session by session.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.runtime.partition import ExpiryRules, Output, PartitionState
from schemas.codec import decode_event
from schemas.events import ParticipantJoinedEvent, SessionEndedEvent
from schemas.timestamps import format_epoch_ms
from schemas.topics import TopicNames
from tests.processor.builders import T0
from tests.processor.runtime.fakes import FakeRecord

TOPICS = TopicNames.with_prefix("unit.")
HOUR_MS = 3_600_000
RULES = ExpiryRules(idle_timeout_ms=HOUR_MS, retention_ms=2 * HOUR_MS)
DERIVED = {TOPICS.sessions, TOPICS.participants, TOPICS.recordings, TOPICS.rooms}

gaps = st.sampled_from([1_000, 30_000, HOUR_MS + 1, 2 * HOUR_MS, 5 * HOUR_MS])
"""Between two callbacks: within the idle timeout, just past it, past it and the retention."""

EVENTS = (
    "session:started",
    "session:participant:joined",
    "session:participant:left",
    "session:ended",
)
callbacks = st.tuples(
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(EVENTS),
    st.sampled_from(["p1", "p2"]),
    gaps,
)


def body(session_id: str, event: str, participant: str, received_ms: int) -> bytes:
    fields: dict[str, object] = {"event": event, "session_id": session_id, "room_id": "r"}
    if event.startswith("session:participant"):
        fields |= {"participant_id": participant, "name": participant, "is_host": False}
    elif event == "session:started":
        fields |= {"started_at": format_epoch_ms(received_ms)}
    elif event == "session:ended":
        fields |= {"started_at": format_epoch_ms(T0), "ended_at": format_epoch_ms(received_ms)}
    return orjson.dumps(fields)


def derived_by_key(outputs: list[Output]) -> dict[tuple[str, bytes | None], list[bytes | None]]:
    """Each derived topic's events key by key, in order (the order consumers see)."""
    found: dict[tuple[str, bytes | None], list[bytes | None]] = defaultdict(list)
    for output in outputs:
        if output.topic in DERIVED:
            found[output.topic, output.key].append(output.value)
    return dict(found)


def run(stream: list[FakeRecord], *, pass_after_each: bool) -> list[Output]:
    state = PartitionState(0, TOPICS, room_dedup_capacity=10, expiry=RULES)
    for record in stream:
        state.process(record)
        if pass_after_each:
            state.expire(record.timestamp, budget=1_000)
    assert state.stream_time_ms is not None
    state.expire(state.stream_time_ms, budget=1_000)
    return state.drain().outputs


@settings(max_examples=300)
@given(st.lists(callbacks, min_size=1, max_size=25))
def test_a_pass_after_every_record_and_none_at_all_derive_the_same(
    drawn: list[tuple[str, str, str, int]],
) -> None:
    stream, received = [], T0
    for offset, (session_id, event, participant, gap) in enumerate(drawn):
        received += gap
        value = body(session_id, event, participant, received)
        stream.append(FakeRecord(TOPICS.raw, 0, offset, received, session_id.encode(), value))

    with_passes = run(stream, pass_after_each=True)
    assert derived_by_key(with_passes) == derived_by_key(run(stream, pass_after_each=False))
    assert not [o for o in with_passes if o.topic == TOPICS.dlq]  # every callback was applied


def test_a_callback_after_the_idle_timeout_finds_its_session_timed_out_without_a_pass() -> None:
    started = body("s1", "session:started", "", T0)
    joined = body("s1", "session:participant:joined", "p1", T0 + 1_000)
    late = body("s1", "session:participant:joined", "p2", T0 + 1_000 + HOUR_MS + 1)
    stream = [
        FakeRecord(TOPICS.raw, 0, offset, timestamp, b"s1", value)
        for offset, (timestamp, value) in enumerate(
            [(T0, started), (T0 + 1_000, joined), (T0 + 1_000 + HOUR_MS + 1, late)]
        )
    ]
    state = PartitionState(0, TOPICS, room_dedup_capacity=10, expiry=RULES)
    for record in stream:
        state.process(record)
    outputs = state.drain().outputs
    events = [decode_event(o.value) for o in outputs if o.topic in DERIVED and o.value]

    first_end = next(event for event in events if isinstance(event, SessionEndedEvent))
    assert (first_end.summary.ended_by, first_end.summary.revision) == ("timeout", 1)
    assert first_end.summary.duration_s == 1.0  # as of its last event, not of when expiry ran
    late_join = next(e for e in events if isinstance(e, ParticipantJoinedEvent) and e.name == "p2")
    # The late joiner came after the timeout was applied: it revises the ended session.
    assert events.index(first_end) < events.index(late_join)
