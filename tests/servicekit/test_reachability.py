"""A broker that refuses connections is logged once when it goes and once when it is back, not
once per attempt."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from servicekit.logs import KafkaNoiseFilter
from servicekit.reachability import REACHABILITY, BrokerReachability, watch_broker_connections
from tools.devkafka import free_port


def test_one_line_when_a_broker_goes_and_one_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    tracker = BrokerReachability(logging.getLogger("test.reachability"), clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="test.reachability")
    for _ in range(500):
        tracker.failed("10.0.0.3:9092", ConnectionRefusedError("Connect call failed"))
    assert tracker.unreachable() == ["10.0.0.3:9092"]
    now[0] = 112.5
    tracker.connected("10.0.0.3:9092")
    tracker.connected("10.0.0.3:9092")  # connections to a healthy broker log nothing
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Kafka broker 10.0.0.3:9092 unreachable (Connect call failed); retrying, further "
            "failures are logged at debug",
        ),
        (
            "INFO",
            "Kafka broker 10.0.0.3:9092 connected again, 12.5 s after the first failure (500 "
            "failed connection attempts)",
        ),
    ]
    assert tracker.unreachable() == []


def test_aiokafka_connection_failures_are_debug() -> None:
    noise = KafkaNoiseFilter(logging.INFO, grace_s=0)
    refused = ConnectionRefusedError("Connect call failed")
    for name, template, args in (
        ("aiokafka", "Unable connect to node with id %s: %s", (3, refused)),
        ("aiokafka", 'Unable connect to "%s:%s": %s', ("127.0.0.1", 9092, refused)),
        ("aiokafka", "Unable to update metadata from %s", ([1, 2, 3],)),
        (
            "aiokafka.consumer.fetcher",
            "Failed fetch messages from %s: %s",
            (3, NodeNotReadyError("Attempt to send a request to node which is not ready")),
        ),
    ):
        line = logging.LogRecord(name, logging.ERROR, __file__, 1, template, args, None)
        assert noise.filter(line) is False
        assert line.levelno == logging.DEBUG


async def test_real_clients_report_through_the_tracker(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    watch_broker_connections()
    caplog.set_level(logging.INFO, logger="servicekit.kafka")
    nowhere = f"127.0.0.1:{free_port()}"
    for _ in range(3):
        producer = AIOKafkaProducer(bootstrap_servers=nowhere, request_timeout_ms=1000)
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
    assert nowhere in REACHABILITY.unreachable()
    # (aiokafka's own lines reach caplog unfiltered; the services' handler drops them.)
    ours = [r for r in caplog.records if r.name == "servicekit.kafka"]
    assert sum(nowhere in r.getMessage() for r in ours) == 1

    # The success path: a broker the tracker believes down is logged once as back.
    REACHABILITY.failed(kafka_bootstrap, ConnectionRefusedError("test"))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await producer.stop()
    assert kafka_bootstrap not in REACHABILITY.unreachable()
    assert any(
        r.getMessage().startswith(f"Kafka broker {kafka_bootstrap} connected again")
        for r in caplog.records
    )
