"""The committers with fake producers: a send or a commit that fails leaves nothing visible,
settles every delivery, and raises."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import TopicPartition

from processor.runtime.committer import AtLeastOnceCommitter, TransactionalCommitter
from processor.runtime.partition import Batch, Output
from tests.processor.runtime.fakes import FakeKafka, FakeProducer, fake_settings

SETTINGS = fake_settings()
RAW0 = TopicPartition(SETTINGS.topics.raw, 0)


def batch(*values: bytes, next_offset: int = 3) -> Batch:
    outputs = [Output(topic=SETTINGS.topics.sessions, key=b"k", value=v) for v in values]
    return Batch(outputs=outputs, next_offset=next_offset, input_records=len(values))


async def started(kafka: FakeKafka) -> TransactionalCommitter:
    committer = TransactionalCommitter(SETTINGS, 0, kafka.producer)
    await committer.start()
    return committer


async def test_a_batch_commits_its_outputs_and_offset_together() -> None:
    kafka = FakeKafka()
    committer = await started(kafka)
    await committer.commit(batch(b"a", b"b"))
    assert [r.value for r in kafka.records(SETTINGS.topics.sessions)] == [b"a", b"b"]
    assert kafka.committed[RAW0] == 3


async def test_the_offsets_join_the_transaction_after_its_outputs_are_acknowledged() -> None:
    kafka = FakeKafka()
    committer = await started(kafka)
    await committer.commit(batch(b"a", b"b"))
    await committer.commit(batch(b"c", next_offset=4))
    [producer] = kafka.producers
    assert isinstance(producer, FakeProducer)
    assert producer.offsets_before_acknowledgements == 0
    assert kafka.committed[RAW0] == 4


async def test_a_failed_commit_leaves_nothing_visible_and_raises() -> None:
    kafka = FakeKafka()
    kafka.fail_commit = lambda tid: KafkaError("commit failed")
    committer = await started(kafka)
    with pytest.raises(KafkaError, match="commit failed"):
        await committer.commit(batch(b"a"))
    assert kafka.records(SETTINGS.topics.sessions) == []
    assert RAW0 not in kafka.committed
    assert kafka.aborts == 1


async def test_a_send_that_fails_half_way_aborts_and_settles_the_sent_ones() -> None:
    kafka = FakeKafka()
    committer = await started(kafka)
    loop = asyncio.get_running_loop()
    unhandled: list[object] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    with pytest.raises(MessageSizeTooLargeError):
        await committer.commit(batch(b"a", b"z" * 2_000_000))
    assert kafka.records(SETTINGS.topics.sessions) == []
    assert kafka.aborts == 1
    await committer.commit(batch(b"c", next_offset=4))  # the next transaction goes through
    assert [r.value for r in kafka.records(SETTINGS.topics.sessions)] == [b"c"]
    assert kafka.committed[RAW0] == 4
    gc.collect()  # an unretrieved future exception is reported when the future is collected
    assert unhandled == []  # the aborted delivery's error was consumed


async def test_a_producer_that_cannot_start_is_closed() -> None:
    kafka = FakeKafka()
    kafka.fail_producer_start = lambda tid: True
    committer = TransactionalCommitter(SETTINGS, 0, kafka.producer)
    with pytest.raises(KafkaError):
        await committer.start()
    [producer] = kafka.producers
    assert producer.stopped


async def test_at_least_once_commits_the_offset_only_after_the_outputs() -> None:
    kafka = FakeKafka()
    consumer = kafka.consumer(SETTINGS.topics.raw)
    await consumer.getmany(timeout_ms=1)  # joins: owns every partition
    producer = kafka.producer(None, "shared")
    await producer.start()
    committer = AtLeastOnceCommitter(producer, consumer, 0, SETTINGS.topics.raw)
    with pytest.raises(MessageSizeTooLargeError):
        await committer.commit(batch(b"a", b"z" * 2_000_000))
    assert RAW0 not in kafka.committed  # the offset did not move
    await committer.commit(batch(b"b"))
    assert kafka.committed[RAW0] == 3
