"""``PartitionState`` without Kafka: DLQ copies bounded, a record failing half-way stops the
state, known poison offsets dead-lettered unapplied, and the stream clock."""

from __future__ import annotations

import pytest

import processor.runtime.partition as partition_module
from processor.engine import Session, apply
from processor.engine.apply import Applied
from processor.engine.facts import Fact, RecordingChanged
from processor.metrics import DERIVED_EVENTS
from processor.runtime.dlq import DLQ_MAX_RECORD_BYTES, HEADER_DLQ_TRUNCATED
from processor.runtime.partition import PROCESSING_ERROR, PartitionState
from schemas import decode_event
from schemas.topics import TopicNames
from tests.kafka_helpers import unique_name
from tests.processor.runtime.fakes import FakeRecord
from tests.processor.runtime.scripted_meeting import recent_ms, scripted_meeting

TOPICS = TopicNames.with_prefix("unit.")


def state(poison_offsets: dict[int, str] | None = None) -> PartitionState:
    return PartitionState(0, TOPICS, room_dedup_capacity=10, poison_offsets=poison_offsets)


def records(session_id: str = "2_MX40-unit") -> list[FakeRecord]:
    meeting = scripted_meeting(session_id, "room-unit", t0=recent_ms())
    return [
        FakeRecord(TOPICS.raw, 0, offset, r.received_at_ms, r.key, r.body, (("received-at", b"1"),))
        for offset, r in enumerate(meeting)
    ]


def dlq(batch_outputs: list[partition_module.Output]) -> list[partition_module.Output]:
    return [o for o in batch_outputs if o.topic == TOPICS.dlq]


@pytest.mark.parametrize("size", [10, 900_000, 1_048_000, 5_000_000])
def test_a_dlq_copy_never_exceeds_the_record_limit(size: int) -> None:
    partition = state()
    value = b"y" * size
    partition.process(FakeRecord(TOPICS.raw, 0, 7, 1, b"k", value, (("received-at", b"1"),)))
    [copy] = dlq(partition.drain().outputs)
    headers = dict(copy.headers)
    total = len(copy.key or b"") + len(copy.value or b"")
    total += sum(len(k) + len(v) for k, v in copy.headers)
    assert total <= DLQ_MAX_RECORD_BYTES
    if size < 900_001:
        assert copy.value == value
        assert HEADER_DLQ_TRUNCATED not in headers
    else:
        assert headers[HEADER_DLQ_TRUNCATED] == str(size).encode()
        assert copy.value == value[: len(copy.value or b"")]
    assert headers["source-offset"] == b"7"
    assert headers["received-at"] == b"1"  # the raw record's own headers are kept


def test_a_record_that_fails_half_way_stops_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails_on_recording(session: Session | None, facts: list[Fact], received: int) -> Applied:
        applied = apply(session, facts, received)
        if any(isinstance(fact, RecordingChanged) for fact in facts):
            raise RuntimeError("boom")
        return applied

    monkeypatch.setattr(partition_module, "apply", fails_on_recording)
    partition = state()
    meeting = records()
    for record in meeting:
        partition.process(record)
    assert partition.poisoned is not None
    assert (partition.poisoned.offset, partition.poisoned.error) == (4, "RuntimeError: boom")
    assert partition.pending_records == 5  # nothing after the failed record was taken


def test_known_poison_offsets_are_dead_lettered_without_being_applied() -> None:
    partition = state({4: "RuntimeError: boom"})
    for record in records():
        partition.process(record)
    batch = partition.drain()
    [copy] = dlq(batch.outputs)
    headers = dict(copy.headers)
    assert (headers["dlq-reason"], headers["dlq-error"]) == (
        PROCESSING_ERROR.encode(),
        b"RuntimeError: boom",
    )
    assert headers["source-offset"] == b"4"
    [session] = partition.sessions.values()
    [recording] = session.recordings.values()
    assert recording.started_received_at is None  # recording:started (offset 4) never applied
    assert batch.next_offset == 10


def test_the_stream_clock_is_the_latest_record_timestamp() -> None:
    partition = state()
    assert partition.stream_time_ms is None
    meeting = records()
    for record in [meeting[3], meeting[1]]:
        partition.process(record)
    assert partition.stream_time_ms == meeting[3].timestamp


def test_derived_events_are_counted_by_type_when_their_batch_is_drained() -> None:
    def counted() -> dict[str, float]:
        return {
            sample.labels["type"]: sample.value
            for metric in DERIVED_EVENTS.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }

    partition = state()
    before = counted()
    for record in records(unique_name("2_MX40-count")):
        partition.process(record)
    assert counted() == before  # nothing drained, nothing counted yet
    outputs = partition.drain().outputs
    published: dict[str, float] = {}
    for output in outputs:
        if output.topic in (TOPICS.sessions, TOPICS.participants, TOPICS.recordings, TOPICS.rooms):
            event_type = decode_event(output.value or b"").__struct_config__.tag
            published[str(event_type)] = published.get(str(event_type), 0) + 1
    after = counted()
    assert published
    assert after == before | {t: before.get(t, 0) + n for t, n in published.items()}
