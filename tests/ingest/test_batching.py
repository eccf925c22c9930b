"""Ingest's own record batches: order, one submission per batch, deadlines, failures.

The producer here is a stand-in that hands the batches to the test (whether Kafka stores what
ingest sends is proven against a real broker in test_storage.py and test_kafka_outage.py); the
batches themselves are aiokafka's ``BatchBuilder``, read back as Kafka would read them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from ingest.kafka.batching import DeliveryTimeout, PartitionBatches, TopicGone

TOPIC = "meetings.raw"
BATCH_BYTES = 1024


@dataclass
class Submitted:
    partition: int
    builder: BatchBuilder
    delivery: asyncio.Future[Any]

    def values(self) -> list[bytes]:
        batch = MemoryRecords(bytes(self.builder._build())).next_batch()
        assert batch is not None
        return [record.value for record in batch if record.value is not None]


@dataclass
class FakeProducer:
    """Submissions wait while ``slot_free`` is clear, as aiokafka's do while a batch of the
    same partition is still unsent."""

    submitted: list[Submitted] = field(default_factory=list)
    slot_free: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_with: Exception | None = None
    submission: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.slot_free.set()

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0, is_transactional=False)

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        assert topic == TOPIC
        await self.slot_free.wait()
        if self.refuse_with is not None:
            raise self.refuse_with
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        async with self.submission:
            self.submitted.append(Submitted(partition, batch, delivery))
            self.submission.notify_all()
        return delivery


async def wait_for_submissions(producer: FakeProducer, count: int) -> None:
    async with asyncio.timeout(5), producer.submission:
        await producer.submission.wait_for(lambda: len(producer.submitted) >= count)


def batches_of(
    producer: FakeProducer, *, timeout_s: float = 30.0, topic_exists: bool = True
) -> PartitionBatches:
    return PartitionBatches(producer, TOPIC, timeout_s=timeout_s, topic_exists=lambda: topic_exists)


def add(batches: PartitionBatches, partition: int, value: bytes) -> asyncio.Future[None]:
    return batches.add(partition, b"session", value, [("request-id", b"r")], 1_700_000_000_000)


async def test_records_of_one_event_loop_turn_leave_as_one_batch_per_partition() -> None:
    producer = FakeProducer()
    batches = batches_of(producer)
    waiters = [add(batches, i % 2, b"%d" % i) for i in range(6)]

    await wait_for_submissions(producer, 2)
    assert sorted((s.partition, s.values()) for s in producer.submitted) == [
        (0, [b"0", b"2", b"4"]),
        (1, [b"1", b"3", b"5"]),
    ]
    assert not any(waiter.done() for waiter in waiters)

    for submission in producer.submitted:
        submission.delivery.set_result(None)
    await asyncio.wait_for(asyncio.gather(*waiters), 5)


async def test_records_arriving_while_a_batch_waits_fill_the_next_one_in_order() -> None:
    producer = FakeProducer()
    producer.slot_free.clear()
    batches = batches_of(producer)
    first = [add(batches, 0, b"a"), add(batches, 0, b"b")]
    await asyncio.sleep(0)  # the sender now waits for the partition's slot
    later = [add(batches, 0, b"c"), add(batches, 0, b"d")]
    assert producer.submitted == []

    producer.slot_free.set()
    await wait_for_submissions(producer, 1)
    # The waiting batch took every record that came before it was handed over.
    assert producer.submitted[0].values() == [b"a", b"b", b"c", b"d"]
    after = add(batches, 0, b"e")
    await wait_for_submissions(producer, 2)
    assert producer.submitted[1].values() == [b"e"]

    producer.submitted[0].delivery.set_result(None)
    await asyncio.wait_for(asyncio.gather(*first, *later), 5)
    assert not after.done()
    producer.submitted[1].delivery.set_result(None)
    await asyncio.wait_for(after, 5)


async def test_a_full_batch_is_followed_by_another_and_order_is_kept() -> None:
    producer = FakeProducer()
    batches = batches_of(producer)
    values = [b"%03d" % i + b"x" * 400 for i in range(10)]
    waiters = [add(batches, 3, value) for value in values]

    await wait_for_submissions(producer, 5)
    await asyncio.sleep(0)
    assert len(producer.submitted) == 5  # two records of ~420 bytes fit in 1,024, not three
    assert all(s.builder.size() <= BATCH_BYTES for s in producer.submitted)
    stored = [value for submission in producer.submitted for value in submission.values()]
    assert stored == values
    for submission in producer.submitted:
        submission.delivery.set_result(None)
    await asyncio.wait_for(asyncio.gather(*waiters), 5)


async def test_a_record_larger_than_a_batch_travels_alone() -> None:
    producer = FakeProducer()
    batches = batches_of(producer)
    small, big = add(batches, 0, b"small"), add(batches, 0, b"B" * (BATCH_BYTES * 4))

    await wait_for_submissions(producer, 2)
    assert [s.values() for s in producer.submitted] == [[b"small"], [b"B" * (BATCH_BYTES * 4)]]
    for submission in producer.submitted:
        submission.delivery.set_result(None)
    await asyncio.wait_for(asyncio.gather(small, big), 5)


async def test_a_failed_delivery_fails_the_records_of_that_batch_only() -> None:
    producer = FakeProducer()
    batches = batches_of(producer)
    doomed = [add(batches, 0, b"a"), add(batches, 0, b"b")]
    spared = add(batches, 1, b"c")
    await wait_for_submissions(producer, 2)

    by_partition = {s.partition: s for s in producer.submitted}
    by_partition[0].delivery.set_exception(KafkaTimeoutError())
    by_partition[1].delivery.set_result(None)
    for waiter in doomed:
        with pytest.raises(KafkaTimeoutError):
            await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(spared, 5)


async def test_a_batch_the_producer_refuses_fails_its_records_and_the_next_is_still_sent() -> None:
    producer = FakeProducer(refuse_with=KafkaTimeoutError())
    batches = batches_of(producer)
    refused = add(batches, 0, b"a")
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(refused, 5)

    producer.refuse_with = None
    accepted = add(batches, 0, b"b")
    await wait_for_submissions(producer, 1)
    assert producer.submitted[0].values() == [b"b"]
    producer.submitted[0].delivery.set_result(None)
    await asyncio.wait_for(accepted, 5)


async def test_an_unacknowledged_batch_times_out_and_later_records_get_a_new_deadline() -> None:
    producer = FakeProducer()
    batches = batches_of(producer, timeout_s=0.05)
    late = add(batches, 0, b"a")
    await wait_for_submissions(producer, 1)
    with pytest.raises(DeliveryTimeout):
        await asyncio.wait_for(late, 5)

    # The broker acknowledging afterwards changes nothing for the caller already answered.
    producer.submitted[0].delivery.set_result(None)
    fresh = add(batches, 0, b"b")
    await wait_for_submissions(producer, 2)
    producer.submitted[1].delivery.set_result(None)
    await asyncio.wait_for(fresh, 5)


async def test_a_batch_waiting_for_its_slot_times_out_and_is_sent_anyway() -> None:
    producer = FakeProducer()
    producer.slot_free.clear()
    batches = batches_of(producer, timeout_s=0.05)
    waiting = add(batches, 0, b"a")
    with pytest.raises(DeliveryTimeout):
        await asyncio.wait_for(waiting, 5)
    after_deadline = add(batches, 0, b"b")

    producer.slot_free.set()
    await wait_for_submissions(producer, 2)
    # Nothing accepted into a batch is dropped, even when its caller has gone.
    assert [s.values() for s in producer.submitted] == [[b"a"], [b"b"]]
    producer.submitted[1].delivery.set_result(None)
    await asyncio.wait_for(after_deadline, 5)


async def test_a_caller_giving_up_leaves_the_other_records_of_its_batch_alone() -> None:
    producer = FakeProducer()
    batches = batches_of(producer)
    impatient, patient = add(batches, 0, b"a"), add(batches, 0, b"b")
    impatient.cancel()
    await wait_for_submissions(producer, 1)

    assert producer.submitted[0].values() == [b"a", b"b"]
    producer.submitted[0].delivery.set_result(None)
    await asyncio.wait_for(patient, 5)


async def test_a_topic_gone_from_the_metadata_fails_the_batch_before_submission() -> None:
    producer = FakeProducer()
    batches = batches_of(producer, topic_exists=False)
    with pytest.raises(TopicGone):
        await asyncio.wait_for(add(batches, 0, b"a"), 5)
    assert producer.submitted == []


async def test_close_returns_once_every_batch_is_submitted() -> None:
    producer = FakeProducer()
    producer.slot_free.clear()
    batches = batches_of(producer)
    add(batches, 0, b"a")
    add(batches, 1, b"b")
    await asyncio.sleep(0)

    closing = asyncio.ensure_future(batches.close())
    await asyncio.sleep(0)
    assert not closing.done()
    producer.slot_free.set()
    await asyncio.wait_for(closing, 5)
    assert sorted(s.partition for s in producer.submitted) == [0, 1]
