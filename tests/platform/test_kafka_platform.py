"""What the product relies on from the broker and aiokafka, proven against a real broker.

Produce/consume, consumer-group partition assignment, transactions seen through
``read_committed``, and consumer offsets committed atomically with a transaction's output.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from tests.conftest import TopicFactory
from tests.kafka_helpers import consume_count, consume_until, unique_name, wait_until


@asynccontextmanager
async def started_producer(bootstrap: str, **options: object) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def started_consumer(
    bootstrap: str, *topics: str, **options: object
) -> AsyncIterator[AIOKafkaConsumer]:
    options.setdefault("auto_offset_reset", "earliest")
    options.setdefault("enable_auto_commit", False)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **options)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def test_produce_then_consume_keeps_keys_values_and_order(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("produce")
    sent = [(f"key-{i % 3}".encode(), f"value-{i}".encode()) for i in range(20)]
    async with started_producer(kafka_bootstrap, acks="all", enable_idempotence=True) as producer:
        for key, value in sent:
            await producer.send(topic, value=value, key=key)
        await producer.flush()

    async with started_consumer(kafka_bootstrap, topic, group_id=unique_name("g")) as consumer:
        received = await consume_count(consumer, len(sent))

    assert [(record.key, record.value) for record in received] == sent
    assert [record.offset for record in received] == list(range(len(sent)))


async def test_two_consumers_in_one_group_split_four_partitions(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("split", partitions=4)
    group = unique_name("group")
    options: dict[str, object] = {"group_id": group, "heartbeat_interval_ms": 200}
    async with (
        started_consumer(kafka_bootstrap, topic, **options) as first,
        started_consumer(kafka_bootstrap, topic, **options) as second,
    ):

        def split_evenly() -> bool:
            mine, theirs = first.assignment(), second.assignment()
            return len(mine) == 2 and len(theirs) == 2 and not (mine & theirs)

        await wait_until(split_evenly, what="both members to own two partitions each")
        assert first.assignment() | second.assignment() == {
            TopicPartition(topic, p) for p in range(4)
        }

        async with started_producer(kafka_bootstrap) as producer:
            for partition in range(4):
                await producer.send_and_wait(topic, f"p{partition}".encode(), partition=partition)

        first_records = await consume_count(first, 2)
        second_records = await consume_count(second, 2)

    for consumer, records in ((first, first_records), (second, second_records)):
        assert {TopicPartition(r.topic, r.partition) for r in records} == consumer.assignment()
    assert sorted(r.value for r in first_records + second_records) == [
        b"p0",
        b"p1",
        b"p2",
        b"p3",
    ]


async def test_read_committed_sees_committed_transactions_only(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("txn")
    async with started_producer(
        kafka_bootstrap, transactional_id=unique_name("txn-producer")
    ) as producer:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2")

    def reached_last(records: list[object]) -> bool:
        return any(getattr(r, "value", None) == b"committed-2" for r in records)

    async with started_consumer(
        kafka_bootstrap, topic, isolation_level="read_committed"
    ) as committed_reader:
        committed = await consume_until(committed_reader, reached_last, what="committed-2")
    async with started_consumer(
        kafka_bootstrap, topic, isolation_level="read_uncommitted"
    ) as dirty_reader:
        everything = await consume_until(dirty_reader, reached_last, what="committed-2")

    assert [r.value for r in committed] == [b"committed-1", b"committed-2"]
    # The aborted record really is in the log; only the isolation level hides it.
    assert [r.value for r in everything] == [b"committed-1", b"aborted", b"committed-2"]


async def test_offsets_commit_atomically_with_the_transaction_output(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    source = await new_topic("source")
    sink = await new_topic("sink")
    group = unique_name("processor")
    source_partition = TopicPartition(source, 0)

    async with started_producer(kafka_bootstrap) as feeder:
        for i in range(5):
            await feeder.send(source, f"in-{i}".encode())
        await feeder.flush()

    consumer_options: dict[str, object] = {
        "group_id": group,
        "isolation_level": "read_committed",
    }
    async with (
        started_consumer(kafka_bootstrap, source, **consumer_options) as consumer,
        started_producer(kafka_bootstrap, transactional_id=unique_name("txn")) as producer,
    ):
        batch = await consume_count(consumer, 5)
        async with producer.transaction():
            for record in batch:
                await producer.send(sink, record.value.replace(b"in", b"out"))
            await producer.send_offsets_to_transaction(
                {source_partition: batch[-1].offset + 1}, group
            )

        async def committed_offset_is(expected: int) -> bool:
            return bool(await consumer.committed(source_partition) == expected)

        # The coordinator writes the commit markers just after EndTxn returns.
        await wait_until(lambda: committed_offset_is(5), what="the group offset to read 5")

        # A transaction that aborts takes its offsets with it.
        async with started_producer(kafka_bootstrap) as feeder:
            for i in range(5, 7):
                await feeder.send(source, f"in-{i}".encode())
            await feeder.flush()
        retry_batch = await consume_count(consumer, 2)
        await producer.begin_transaction()
        for record in retry_batch:
            await producer.send(sink, record.value.replace(b"in", b"lost"))
        await producer.send_offsets_to_transaction(
            {source_partition: retry_batch[-1].offset + 1}, group
        )
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(sink, b"end")

    async with started_consumer(kafka_bootstrap, sink, isolation_level="read_committed") as reader:
        output = await consume_until(
            reader, lambda rs: any(r.value == b"end" for r in rs), what="the end marker"
        )
    assert [r.value for r in output] == [f"out-{i}".encode() for i in range(5)] + [b"end"]
    async with started_consumer(kafka_bootstrap, group_id=group) as observer:
        # Markers of the later transactions are written by now, so the abort's are too.
        assert await observer.committed(source_partition) == 5

    # A new member of the group resumes exactly after the committed transaction.
    async with started_consumer(kafka_bootstrap, source, **consumer_options) as successor:
        resumed = await consume_count(successor, 2)
    assert [r.value for r in resumed] == [b"in-5", b"in-6"]
