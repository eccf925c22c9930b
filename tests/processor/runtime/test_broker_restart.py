"""The broker goes away under a running processor and comes back: nothing lost, nothing
duplicated, no restart needed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from processor.settings import ProcessorSettings
from schemas import SessionEndedEvent, decode_event
from schemas.topics import TopicNames
from servicekit.kafka import KafkaSettings
from tests.kafka_helpers import unique_name, wait_until
from tests.processor.runtime.conftest import PARTITIONS, feed, read_all, running
from tests.processor.runtime.scripted_meeting import scripted_meeting
from tools.devkafka import EmbeddedKafka
from tools.devkafka.admin import create_topic


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(workdir=tmp_path / "kafka") as broker:
        yield broker


async def test_a_broker_restart_under_a_running_processor_loses_and_duplicates_nothing(
    own_broker: EmbeddedKafka, settings: ProcessorSettings
) -> None:
    bootstrap = own_broker.bootstrap_servers
    topics = TopicNames.with_prefix("outage.")
    for name in (topics.raw, topics.dlq, topics.sessions, topics.participants, topics.recordings,
                 topics.rooms):  # fmt: skip
        await create_topic(bootstrap, name, partitions=PARTITIONS)
    for name in (topics.session_state, topics.changelog):
        await create_topic(
            bootstrap, name, partitions=PARTITIONS, config={"cleanup.policy": "compact"}
        )
    settings = replace(
        settings, kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=topics.prefix)
    )
    sessions = [unique_name("2_MX40-outage") for _ in range(12)]
    records = [r for s in sessions for r in scripted_meeting(s, unique_name("room"))[:-1]]
    half = len(records) // 2

    async def ended() -> set[str]:
        events = [decode_event(r.value) for r in await read_all(bootstrap, topics.sessions)]
        return {e.session_id for e in events if isinstance(e, SessionEndedEvent) and e.session_id}

    async with running(settings) as service:
        await feed(settings, records[:half])
        await wait_until(lambda: service.processed_records >= half, what="the first half applied")
        await asyncio.to_thread(own_broker.stop)
        await asyncio.to_thread(own_broker.start)
        await feed(settings, records[half:])

        async def all_ended() -> bool:
            return set(sessions) <= await ended()

        await wait_until(all_ended, what="every session to end after the outage", within=120)

    for topic in (topics.sessions, topics.participants, topics.recordings):
        events = [decode_event(r.value) for r in await read_all(bootstrap, topic)]
        duplicates = [i for i, n in Counter(e.event_id for e in events).items() if n > 1]
        assert duplicates == [], f"duplicates on {topic}"
    participants = [decode_event(r.value) for r in await read_all(bootstrap, topics.participants)]
    # three stints joined and left, three attendance reports, per session
    assert len(participants) == 9 * len(sessions)
