"""Before joining its group, a processor reads the sessions of the partitions it will be given.

Why: were a joining processor (a scale-out, a restarted pod of a rolling deploy) to read its
partitions only once assigned, each would stand still for a full read of its changelog while the
rest of the group had resumed. The sticky assignor is deterministic, so the newcomer works out
its share before it joins: it describes the group (what each member owns now), runs the same
assignment with itself added as a member that owns nothing, and reads those partitions'
changelogs while the others go on processing. What it read is kept (``kept``) with the offset
each read reached, so once the partitions are assigned, only what their owners wrote meanwhile
is read (a delta restore).

Best effort: a group in the middle of a rebalance, a prediction that turns out wrong, or a read
that fails only cost the full reads this replaces; nothing here decides what is restored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from processor.runtime.assignor import MemberClaim, sticky_assignment
from processor.runtime.changelog_read import RestoreError, decode_sessions
from processor.runtime.clients import ChangelogReader, Clock, GroupView
from processor.runtime.kept import KeptPartition, KeptPartitions
from processor.runtime.offsets import NO_COORDINATOR_YET
from processor.runtime.rebalance import Restored, RestoreKind

logger = logging.getLogger(__name__)

NEWCOMER = "\U0010ffff-joining"
"""The member id the newcomer is given in the prediction: it owns nothing, so only where it
falls among ties of empty members could its id matter, and it sorts after every real one."""


def expected_share(topic: str, partitions: int, owners: Mapping[str, frozenset[int]]) -> list[int]:
    """The partitions of ``topic`` a member joining a group whose members own ``owners`` would be
    given by the sticky assignment."""
    subscription = frozenset({topic})
    members = {
        member_id: MemberClaim(
            subscription, frozenset(TopicPartition(topic, p) for p in owned), epoch=1
        )
        for member_id, owned in owners.items()
    }
    members[NEWCOMER] = MemberClaim(subscription)
    everything = [TopicPartition(topic, p) for p in range(partitions)]
    return [tp.partition for tp in sticky_assignment(everything, members)[NEWCOMER]]


async def warm_up(
    *,
    topic: str,
    group: GroupView,
    changelog: ChangelogReader,
    kept: KeptPartitions,
    clock: Clock,
    time_limit_s: float,
) -> list[int]:
    """Read and keep the expected share's sessions; returns the partitions read."""
    began = clock.monotonic()
    try:
        async with asyncio.timeout(time_limit_s):
            snapshot = await group.describe(topic)
            if snapshot is None:
                logger.info("group rebalancing: joining without reading ahead")
                return []
            share = expected_share(topic, snapshot.partitions, snapshot.owners)
            reads = await changelog.read(dict.fromkeys(share))  # one consumer, all of them
            read_ahead: list[Restored] = []
            for partition, read in reads.items():
                restored = decode_sessions(partition, read.live())
                kept.keep(
                    partition,
                    KeptPartition(
                        sessions={session.session_id: session for session in restored},
                        changelog_end=read.end,
                        released_at=clock.monotonic(),
                    ),
                )
                seconds = clock.monotonic() - began
                read_ahead.append(
                    Restored(RestoreKind.WARM_UP, read.records, len(restored), seconds)
                )
    except NO_COORDINATOR_YET as exc:
        # A cluster's first group: the coordinator appears as the consumer joins. Expected on
        # every fresh start, so the broker's error name stays out of the info line.
        logger.info("the group is new (no coordinator yet): joining without reading ahead")
        logger.debug("group coordinator lookup: %r", exc)
        return []
    except (TimeoutError, RestoreError, KafkaError, OSError) as exc:
        logger.warning("reading ahead before joining failed, joining without: %r", exc)
        return []
    for restored_partition in read_ahead:
        restored_partition.record_metrics()
    logger.info(
        "read partitions %s ahead of joining (%d members own the %d partitions now): "
        "%d changelog records, %d sessions, in %.3f s",
        share,
        len(snapshot.owners),
        snapshot.partitions,
        sum(r.records for r in read_ahead),
        sum(r.sessions for r in read_ahead),
        clock.monotonic() - began,
    )
    return share


async def unless_stopped(stop: asyncio.Event, reading_ahead: Coroutine[Any, Any, Any]) -> None:
    """Await ``reading_ahead`` (``warm_up``), given up if ``stop`` is set meanwhile (a SIGTERM
    while starting); its failure is logged, never raised: joining does not depend on it."""
    reading = asyncio.create_task(reading_ahead, name="warm-up")
    stopping = asyncio.create_task(stop.wait(), name="warm-up-stop")
    try:
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reading, stopping):
            task.cancel()
        await asyncio.wait({reading, stopping})
    if not reading.cancelled() and (error := reading.exception()) is not None:
        logger.warning("reading ahead of joining failed, joining without: %r", error)
