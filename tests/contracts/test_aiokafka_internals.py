"""The contract of ``servicekit.aiokafka_internals`` with the installed aiokafka: every internal
it relies on is still there and still behaves so. A failure names the aiokafka version and what
moved; fix ``servicekit/aiokafka_internals.py`` (and only it), not the services.

Also pinned here: what ``servicekit.record_batches`` computes or assumes of aiokafka's public
batch API (the record-size bound, and that a hand-built batch is what ``send`` would write).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import logging
import pathlib
from collections.abc import Iterator

import aiokafka
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord, TopicPartition

from processor.runtime.clients import assignment_strategy
from servicekit import aiokafka_internals as internals
from servicekit.logs import KafkaNoiseFilter
from servicekit.record_batches import append_record, check_record_size, record_size_bound
from tests.conftest import TopicFactory
from tests.kafka_helpers import consume_count, unique_name, wait_until
from tools.devkafka import free_port

VERSION = aiokafka.__version__


def moved(what: str) -> str:
    return f"aiokafka {VERSION}: {what} (servicekit/aiokafka_internals.py relies on it)"


# -- 1. the assignor's classes -------------------------------------------------------------------

ASSIGNOR_NAMES = (
    ("aiokafka.coordinator.assignors.abstract", "AbstractPartitionAssignor"),
    ("aiokafka.coordinator.assignors.roundrobin", "RoundRobinPartitionAssignor"),
    ("aiokafka.coordinator.protocol", "ConsumerProtocolMemberMetadata"),
    ("aiokafka.coordinator.protocol", "ConsumerProtocolMemberAssignment"),
)


@pytest.mark.parametrize(("module", "name"), ASSIGNOR_NAMES)
def test_the_assignor_classes_are_where_they_were(module: str, name: str) -> None:
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(moved(f"{module}.{name} is gone ({exc})"))
    assert found is getattr(internals, name), moved(f"{module}.{name} is another object")


def test_an_assignor_is_asked_what_it_was_asked_before() -> None:
    abstract = internals.AbstractPartitionAssignor
    expected = {"name", "assign", "metadata", "on_assignment"}
    declared = set(getattr(abstract, "__abstractmethods__", ()))
    assert declared == expected, moved(
        f"AbstractPartitionAssignor's abstract members are {sorted(declared)}, "
        f"not {sorted(expected)}"
    )


def test_a_member_assignment_round_trips() -> None:
    assignment = internals.ConsumerProtocolMemberAssignment(0, [("t", [0, 2]), ("u", [1])], b"x")
    decoded = internals.decode_member_assignment(assignment.encode())
    assert sorted(decoded) == [
        TopicPartition("t", 0),
        TopicPartition("t", 2),
        TopicPartition("u", 1),
    ], moved("ConsumerProtocolMemberAssignment no longer encodes/decodes as before")
    metadata = internals.ConsumerProtocolMemberMetadata(0, ["t"], b"owned")
    again = internals.ConsumerProtocolMemberMetadata.decode(metadata.encode())
    assert (again.subscription, again.user_data) == (["t"], b"owned"), moved(
        "ConsumerProtocolMemberMetadata no longer carries subscription and user_data"
    )


# -- 2. connection outcomes ----------------------------------------------------------------------


def test_clients_still_connect_through_create_conn() -> None:
    import aiokafka.client as client

    assert callable(getattr(client, "create_conn", None)), moved("aiokafka.client.create_conn")
    source = pathlib.Path(client.__file__).read_text(encoding="utf-8")
    assert "await create_conn(" in source, moved(
        "AIOKafkaClient no longer opens its connections with the module's create_conn"
    )


async def test_connection_outcomes_reach_the_watcher(kafka_bootstrap: str) -> None:
    failed: list[str] = []
    connected: list[str] = []

    def on_failure(address: str, _: BaseException) -> None:
        failed.append(address)

    internals.watch_connections(on_failure, connected.append)
    try:
        nowhere = f"127.0.0.1:{free_port()}"
        producer = AIOKafkaProducer(bootstrap_servers=nowhere, request_timeout_ms=1000)
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
        assert nowhere in failed, moved("a refused connection did not pass through create_conn")
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.stop()
        assert kafka_bootstrap in connected, moved("a connection did not pass through create_conn")
    finally:
        internals.unwatch_connections(on_failure, connected.append)


# -- 3. log lines --------------------------------------------------------------------------------


def _logged_lines() -> Iterator[internals.LogLine]:
    """Every (logger name, constant template) of aiokafka's ``log.<level>(...)`` calls."""
    root = pathlib.Path(aiokafka.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(("aiokafka", *path.relative_to(root).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        logger = module
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                logger = node.args[0].value
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield internals.LogLine(logger, node.args[0].value)


def test_every_log_line_the_filter_keys_on_is_still_logged() -> None:
    logged = set(_logged_lines())
    gone = sorted(
        f"{line.logger}: {line.template!r}" for line in internals.all_lines() if line not in logged
    )
    assert gone == [], moved(f"these log lines are no longer logged so: {gone}")


async def test_a_refused_connection_logs_the_line_the_filter_keys_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    producer = AIOKafkaProducer(bootstrap_servers=nowhere, request_timeout_ms=1000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    line = internals.LogLine("aiokafka", 'Unable connect to "%s:%s": %s')
    records = [r for r in caplog.records if internals.LogLine(r.name, str(r.msg)) == line]
    assert records, moved(
        f"a refused connection no longer logs {line}; it logged "
        f"{sorted({(r.name, str(r.msg)) for r in caplog.records if r.levelno > logging.DEBUG})}"
    )
    assert line in internals.CONNECT_FAILURE_LINES
    noise = KafkaNoiseFilter(logging.INFO, grace_s=0)
    assert noise.filter(records[0]) is False
    assert records[0].levelno == logging.DEBUG


# -- 4. ingest's topic-creation rule ------------------------------------------------------------


async def test_the_producer_metadata_is_read_listened_to_and_refreshed_as_before(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("contract-metadata", partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        cluster = internals.cluster_metadata(producer)
        for name in ("partitions_for_topic", "available_partitions_for_topic"):
            assert callable(getattr(cluster, name, None)), moved(f"producer.client.cluster.{name}")
        heard: list[object] = []
        cluster.add_listener(heard.append)
        assert await internals.refresh_metadata(producer), moved(
            "force_metadata_update no longer reports a successful refresh"
        )
        assert heard, moved("a listener added to the cluster metadata is not told of an update")
        assert cluster.partitions_for_topic(topic) == {0, 1, 2}, moved(
            "an all-topics refresh no longer brings every topic's partitions"
        )
        assert cluster.available_partitions_for_topic(topic) == {0, 1, 2}, moved(
            "available_partitions_for_topic no longer lists the partitions with a leader"
        )
        assert internals.topic_known(producer, topic)
        assert not internals.topic_known(producer, f"{topic}-never-created")
        cluster.remove_listener(heard.append)
        heard.clear()
        await internals.refresh_metadata(producer)
        assert heard == [], moved("remove_listener no longer stops a metadata listener")
    finally:
        await producer.stop()


async def test_send_batch_to_a_known_topic_asks_for_no_metadata_of_it(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("contract-known")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        client = producer.client
        await client.force_metadata_update()
        assert internals.topic_known(producer, topic)
        requests: list[object] = []
        force = client.force_metadata_update

        def counting() -> object:
            requests.append(None)
            return force()

        client.force_metadata_update = counting
        tracked_before = set(client._topics)
        batch = producer.create_batch()
        assert append_record(batch, key=b"k", value=b"v", headers=(), timestamp_ms=None)
        await (await producer.send_batch(batch, topic, partition=0))
        rule = "(ingest's never-create-the-raw-topic rule rests on it not doing so)"
        assert requests == [], moved(
            f"send_batch to a topic in the cluster metadata now refreshes metadata {rule}"
        )
        assert set(client._topics) == tracked_before, moved(
            f"send_batch to a topic in the cluster metadata now tracks the topic by name {rule}"
        )
    finally:
        await producer.stop()


# -- record_batches against aiokafka --------------------------------------------------------------

RECORDS: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
    (None, b"", []),
    (b"k", None, []),
    (b"key", b"v" * 100, [("request-id", b"r-1")]),
    (b"k" * 200, b"v" * 20_000, [("h\u00e9", b"x" * 300), ("empty", b"")]),
    (b"k", b"v" * 1_048_000, [("a", b"b")] * 70),
]


@pytest.mark.parametrize(("key", "value", "headers"), RECORDS)
def test_the_record_size_bound_is_aiokafkas_estimate(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    ours = record_size_bound(key, value, headers)
    theirs = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    assert ours == theirs, moved(
        f"the producer's record-size estimate is {theirs} bytes, servicekit.record_batches "
        f"computes {ours}: send and the batch paths would refuse different records"
    )


def test_the_size_check_refuses_what_send_refuses() -> None:
    from aiokafka.errors import MessageSizeTooLargeError
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    limit = 1_048_576
    largest = limit
    while record_size_bound(b"k", b"v" * largest, []) > limit:
        largest -= 1
    check_record_size(b"k", b"v" * largest, [], limit)
    with pytest.raises(MessageSizeTooLargeError):
        check_record_size(b"k", b"v" * (largest + 1), [], limit)
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes
    assert estimate(b"k", b"v" * largest, []) <= limit < estimate(b"k", b"v" * (largest + 1), [])


async def test_a_built_batch_is_what_send_would_have_written(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """The same records, sent one by one with ``send`` and as one batch built with
    ``append_record``, read back identical: key, value, headers, timestamp and its type,
    partition."""
    sent_topic = await new_topic("contract-send", partitions=2)
    built_topic = await new_topic("contract-batch", partitions=2)
    records = [
        (b"k-1", b"v-1", [("request-id", b"r-1")], 1_700_000_000_000),
        (None, b"no key", [], 1_700_000_000_001),
        (b"k-3", None, [("a", b"1"), ("b", b"")], 1_700_000_000_002),
        (b"k-4", b"v" * 5_000, [], 1_700_000_000_003),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for key, value, headers, timestamp in records:
            await producer.send_and_wait(
                sent_topic, value, key=key, partition=1, timestamp_ms=timestamp, headers=headers
            )
        batch = producer.create_batch()
        for key, value, headers, timestamp in records:
            assert append_record(
                batch, key=key, value=value, headers=headers, timestamp_ms=timestamp
            )
        assert batch.record_count() == len(records)
        await (await producer.send_batch(batch, built_topic, partition=1))
    finally:
        await producer.stop()

    def seen(read: list[ConsumerRecord[bytes, bytes]]) -> list[tuple[object, ...]]:
        return [
            (r.partition, r.key, r.value, list(r.headers), r.timestamp, r.timestamp_type)
            for r in read
        ]

    results = []
    for topic in (sent_topic, built_topic):
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            results.append(seen(await consume_count(consumer, len(records))))
        finally:
            await consumer.stop()
    assert results[0] == results[1], moved("a built batch reads back differently from send's")
    assert results[1] == [
        (1, key, value, headers, timestamp, 0) for key, value, headers, timestamp in records
    ]


# -- 7. one JoinGroup per join ------------------------------------------------------------------


def test_perform_group_join_is_the_code_the_repair_was_derived_from() -> None:
    assert internals.perform_group_join_digest() == internals.PERFORM_GROUP_JOIN_SHA256, moved(
        "CoordinatorGroupRebalance.perform_group_join changed: see whether it still sends one "
        "JoinGroup per assignor (aio-libs/aiokafka#1168), then re-derive or drop the repair"
    )


class JoinedGenerations(logging.Handler):
    """The generations aiokafka's group coordinator says it joined ("Joined group ...")."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.generations: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Joined group '%s' (generation %s) with member_id %s":
            _, generation, _ = tuple(record.args or ())
            self.generations.append(int(str(generation)))


@contextlib.contextmanager
def joined_generations() -> Iterator[JoinedGenerations]:
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    handler, level = JoinedGenerations(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def group_member(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        partition_assignment_strategy=assignment_strategy(),
    )


async def test_a_member_with_two_assignors_joins_in_one_generation(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    # Unrepaired, its second JoinGroup (two protocols instead of one) starts generation 2.
    internals.join_with_all_protocols()
    topic = await new_topic("contract-join", partitions=2)
    consumer = group_member(kafka_bootstrap, topic, unique_name("contract-join"))
    with joined_generations() as joined:
        await consumer.start()
        try:
            await wait_until(lambda: len(consumer.assignment()) == 2, what="both partitions")
        finally:
            await consumer.stop()
    assert joined.generations == [1]


async def test_members_starting_together_settle_within_two_generations(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    internals.join_with_all_protocols()
    topic = await new_topic("contract-join-two", partitions=4)
    group = unique_name("contract-join-two")
    members = [group_member(kafka_bootstrap, topic, group) for _ in range(2)]
    with joined_generations() as joined:
        await asyncio.gather(*(member.start() for member in members))
        try:
            await wait_until(
                lambda: [len(member.assignment()) for member in members] == [2, 2],
                what="two partitions each",
            )
        finally:
            await asyncio.gather(*(member.stop() for member in members))
    # Whether the second arrives before the first generation completes or after, one join
    # each is enough; every extra JoinGroup would add a generation.
    assert max(joined.generations) <= 2, joined.generations


def test_the_repair_refuses_other_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(internals, "PERFORM_GROUP_JOIN_SHA256", "0" * 64)
    monkeypatch.setattr(internals, "_repaired", [])
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    monkeypatch.setattr(
        CoordinatorGroupRebalance,
        "perform_group_join",
        CoordinatorGroupRebalance.perform_group_join,
    )
    with pytest.raises(internals.JoinRepairRefused, match="aio-libs/aiokafka#1168"):
        internals.join_with_all_protocols()
