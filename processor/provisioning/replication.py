"""How durable the pipeline's topics are: replicas per partition and ``min.insync.replicas``.

Ingest's ``2xx`` means the raw record was acknowledged with ``acks=all``, which is only as strong
as the topic's ``min.insync.replicas``: with replication 3 and the broker default of 1, ``acks=all``
means one copy once the other two fall out of the ISR. So topics are created with
``TOPIC_MIN_INSYNC`` (default replication factor - 1, at least 1), and existing topics must be at
least as durable as configured (as many replicas or more, the same min ISR or more); more is
never refused, so a processor left at the defaults still starts on a replicated cluster.

The functions here return problems as sentences; ``processor.provisioning`` raises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidReplicationFactorError

from processor.provisioning import admin_results
from processor.settings import ProcessorSettings

MIN_INSYNC = "min.insync.replicas"


def settings_problem(settings: ProcessorSettings) -> str | None:
    replication, min_insync = settings.topic_replication_factor, settings.min_insync_replicas
    if min_insync > replication:
        return (
            f"TOPIC_MIN_INSYNC={min_insync} is more than TOPIC_REPLICATION_FACTOR={replication}: "
            "no write to such a topic could ever be acknowledged"
        )
    return None


def replica_counts(topics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, int]:
    """The smallest replica count over each named topic's partitions (metadata response)."""
    return {
        topic["topic"]: min(len(partition["replicas"]) for partition in topic["partitions"])
        for topic in topics
        if topic["topic"] in names and topic["partitions"]
    }


def replication_problems(counts: Mapping[str, int], settings: ProcessorSettings) -> list[str]:
    wanted = settings.topic_replication_factor
    return [
        f"{name} has {count} replica{'s' if count != 1 else ''} per partition, "
        f"TOPIC_REPLICATION_FACTOR is {wanted}"
        for name, count in counts.items()
        if count < wanted
    ]


async def min_insync_problems(
    admin: Any, names: Sequence[str], settings: ProcessorSettings
) -> list[str]:
    """Existing topics whose effective ``min.insync.replicas`` is below the configured one."""
    if not names:
        return []
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, {MIN_INSYNC: None}) for name in names]
    )
    found: dict[str, int] = {}
    for resource in admin_results.config_outcomes(responses):
        for entry in resource.entries:
            if entry.name == MIN_INSYNC and entry.value:
                found[resource.name] = int(entry.value)
    wanted = settings.min_insync_replicas
    return [
        f"{name} has {MIN_INSYNC}={found.get(name, '?')}, TOPIC_MIN_INSYNC is {wanted}"
        for name in names
        if found.get(name, 0) < wanted
    ]


def fix_hint(settings: ProcessorSettings) -> str:
    return (
        ". A topic weaker than configured would let a 2xx mean fewer copies than promised. Raise "
        f"{MIN_INSYNC} with kafka-configs.sh --alter --entity-type topics --entity-name <topic> "
        f"--add-config {MIN_INSYNC}={settings.min_insync_replicas}; add replicas with "
        "kafka-reassign-partitions.sh; or lower TOPIC_REPLICATION_FACTOR / TOPIC_MIN_INSYNC if "
        "the weaker layout is intended."
    )


def creation_problem(
    error: type[Exception] | None, live_brokers: int, settings: ProcessorSettings
) -> str | None:
    """A clearer sentence for a creation refused because the cluster is too small."""
    if error is None or not issubclass(error, InvalidReplicationFactorError):
        return None
    return (
        f"TOPIC_REPLICATION_FACTOR={settings.topic_replication_factor} needs at least that many "
        f"live brokers, the cluster at {settings.kafka.bootstrap_servers} has {live_brokers}"
    )
