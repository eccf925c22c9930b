"""Creating a topic on a development broker (tests, benchmarks); the processor provisions its
own topics with ``python -m processor topics``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topic(
    bootstrap_servers: str,
    name: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(config or {}),
                )
            ]
        )
        # The broker answers once the controller has the topic; its metadata reaches the
        # brokers a moment later, and a client asking meanwhile is told the topic does not
        # exist. Returned only once the metadata lists every partition.
        deadline = time.monotonic() + _VISIBLE_WITHIN_S
        while not await _listed(admin, name, partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} not in the metadata {_VISIBLE_WITHIN_S:g} s on")
            await asyncio.sleep(0.05)  # metadata propagation poll
    finally:
        await admin.close()
    return name


_VISIBLE_WITHIN_S = 30.0


async def _listed(admin: AIOKafkaAdminClient, name: str, partitions: int) -> bool:
    # Every topic: a metadata request naming the topic could create it where brokers do.
    described = await admin.describe_topics()
    return any(t["topic"] == name and len(t["partitions"]) == partitions for t in described)
