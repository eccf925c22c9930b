"""Topic provisioning on a three-broker cluster: replication and min ISR as configured, existing
topics weaker than configured refused, a replication the cluster cannot satisfy refused loudly."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from processor.provisioning import TopicLayoutError, ensure_topics
from processor.settings import ProcessorSettings, load_settings
from schemas.topics import ALL_TOPICS
from tests.kafka_helpers import create_topic, unique_name, wait_until
from tools.devkafka.cluster import EmbeddedKafkaCluster


def settings_for(cluster: EmbeddedKafkaCluster, **environ: str) -> ProcessorSettings:
    return load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
            "MEETINGS_TOPIC_PREFIX": unique_name("r") + ".",
            "TOPIC_PARTITIONS": "2",
            **environ,
        }
    )


async def durability(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """Each topic's smallest replica count and its effective ``min.insync.replicas``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        replicas: dict[str, int] = {}

        async def visible() -> bool:  # a new topic takes a moment to reach every broker
            replicas.update(
                (topic["topic"], min(len(p["replicas"]) for p in topic["partitions"]))
                for topic in await admin.describe_topics(names)
                if topic["partitions"]
            )
            return set(names) <= replicas.keys()

        await wait_until(visible, what=f"topics {names} in the metadata")
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None})
             for name in names]
        )  # fmt: skip
    finally:
        await admin.close()
    min_isr: dict[str, Any] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                min_isr[resource["resource_name"]] = entry["config_value"]
    return {name: (replicas[name], min_isr[name]) for name in names}


async def test_created_topics_have_three_replicas_and_min_insync_two(
    kafka_cluster: EmbeddedKafkaCluster,
) -> None:
    settings = settings_for(kafka_cluster, TOPIC_REPLICATION_FACTOR="3")
    report = await ensure_topics(settings)
    names = [status.name for status in report.created]
    assert len(names) == len(ALL_TOPICS)
    assert set((await durability(kafka_cluster.bootstrap_servers, names)).values()) == {(3, "2")}
    # A processor left at the defaults (replication 1) accepts the stronger topics.
    again = await ensure_topics(
        settings_for(kafka_cluster, MEETINGS_TOPIC_PREFIX=settings.kafka.topic_prefix)
    )
    assert again.created == ()


async def test_a_replication_the_cluster_cannot_hold_is_refused_naming_the_brokers(
    kafka_cluster: EmbeddedKafkaCluster,
) -> None:
    settings = settings_for(kafka_cluster, TOPIC_REPLICATION_FACTOR="4")
    with pytest.raises(
        TopicLayoutError,
        match=r"TOPIC_REPLICATION_FACTOR=4 needs at least that many live brokers.* has 3",
    ):
        await ensure_topics(settings)


@pytest.mark.parametrize(
    ("config", "replication", "problem"),
    [
        ({"min.insync.replicas": "2"}, 1, r"has 1 replica per partition, TOPIC_REPLICATION_FACTOR"),
        ({"min.insync.replicas": "1"}, 3, r"has min.insync.replicas=1, TOPIC_MIN_INSYNC is 2"),
    ],
)
async def test_an_existing_topic_weaker_than_configured_is_refused(
    kafka_cluster: EmbeddedKafkaCluster, config: dict[str, str], replication: int, problem: str
) -> None:
    settings = settings_for(kafka_cluster, TOPIC_REPLICATION_FACTOR="3")
    await create_topic(
        kafka_cluster.bootstrap_servers,
        settings.topics.raw,
        partitions=2,
        replication_factor=replication,
        config={"cleanup.policy": "delete", **config},
    )
    with pytest.raises(TopicLayoutError, match=problem):
        await ensure_topics(settings)
