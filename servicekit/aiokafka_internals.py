"""The one module that relies on internals of aiokafka: names and behaviours aiokafka does not
document as its API, each listed here with why no public API does the job.

Everything else in ``ingest``, ``processor`` and ``servicekit`` uses only what aiokafka documents
(``aiokafka``, ``aiokafka.errors``, ``aiokafka.structs``, ``aiokafka.abc``, ``aiokafka.helpers``,
``aiokafka.admin``): its clients, ``create_batch``/``send_batch``/``partitions_for``, the admin
client, ``ConsumerRebalanceListener``. ``tests/contracts/test_aiokafka_internals.py`` checks each
item below against the installed aiokafka and fails naming its version and what moved.

1. ``AbstractPartitionAssignor``, ``RoundRobinPartitionAssignor``
   (``aiokafka.coordinator.assignors.*``) and ``ConsumerProtocolMemberMetadata``,
   ``ConsumerProtocolMemberAssignment`` (``aiokafka.coordinator.protocol``). aiokafka documents
   ``partition_assignment_strategy`` as taking ``AbstractPartitionAssignor`` subclasses whose
   ``metadata``/``assign`` return these protocol objects, but exports none of them from a public
   module. The processor's sticky assignor needs all four, and reads a DescribeGroups member
   assignment (bytes) with ``decode_member_assignment``.
2. ``aiokafka.client.create_conn``: every aiokafka client opens its broker connections through
   it. ``watch_connections`` wraps it so ``servicekit.reachability`` hears of each connection
   attempt's outcome: no public API reports a client's failed and restored connections (the
   clients log each failure, but nothing when a connection succeeds again).
3. Log message templates (``LogLine``): ``servicekit.logs`` lowers the level of aiokafka's
   expected complaints by logger name and message template (``record.name``/``record.msg``).
   Which lines aiokafka logs, and with which template, is not API.
4. A behaviour: ``send_batch`` (like ``send``) to a topic already in the producer's cluster
   metadata (``producer.client.cluster.partitions_for_topic(topic)`` is not ``None``) sends no
   metadata request naming the topic. Ingest relies on it never to cause the raw topic's
   creation (a named metadata request lets a broker with ``auto.create.topics.enable`` create
   it); aiokafka has no option to turn auto-creation off for its requests. ``topic_known``
   is the check ingest makes before each ``send_batch``.
5. The producer's cluster metadata (``producer.client.cluster``: ``partitions_for_topic``,
   ``available_partitions_for_topic``, ``add_listener``/``remove_listener``) and its
   all-topics refresh (``producer.client.force_metadata_update()``), reached only through
   ``cluster_metadata`` and ``refresh_metadata``. Ingest learns the raw topic's partitions from
   every metadata update and refreshes readiness without naming the topic; aiokafka documents
   only ``partitions_for``, which requests the topic by name (and so may create it where the
   broker auto-creates topics) and waits for it.
6. ``DefaultRecordBatchBuilder.estimate_size_in_bytes`` is *not* used: the record-size bound is
   computed from Kafka's protocol in ``servicekit.record_batches``; the contract test only
   compares the two.
7. A defect, and its repair: ``CoordinatorGroupRebalance.perform_group_join``
   (``aiokafka.consumer.group_coordinator``) sends one JoinGroup per configured assignor, the
   first naming one protocol, the next two, and so on (its request loop sits inside the loop
   over assignors; aio-libs/aiokafka#1168). Each JoinGroup after the first changes the member's
   protocols, which makes the coordinator start another rebalance, so with two assignors (the
   processor's sticky one and round-robin, for rolling upgrades) every join costs two
   generations and members joining together can keep failing each other's SyncGroup for tens of
   seconds. ``join_with_all_protocols`` replaces the method with the same code sending a single
   JoinGroup that names every protocol; it refuses to install over any other code than the one
   it was derived from (``PERFORM_GROUP_JOIN_SHA256``), so the release that changes the method
   is a loud failure at start-up and in the contract test, not a silent regression.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiokafka
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.structs import TopicPartition

__all__ = [
    "AIOKAFKA_VERSION",
    "AbstractPartitionAssignor",
    "ClusterMetadata",
    "ConsumerProtocolMemberAssignment",
    "ConsumerProtocolMemberMetadata",
    "JoinRepairRefused",
    "LogLine",
    "RoundRobinPartitionAssignor",
    "cluster_metadata",
    "decode_member_assignment",
    "join_with_all_protocols",
    "refresh_metadata",
    "topic_known",
    "unwatch_connections",
    "watch_connections",
]

AIOKAFKA_VERSION: str = aiokafka.__version__


def decode_member_assignment(data: bytes) -> list[TopicPartition]:
    """The partitions of a consumer group member's assignment as DescribeGroups returns it."""
    assignment = ConsumerProtocolMemberAssignment.decode(data)
    return list(assignment.partitions())


def topic_known(producer: Any, topic: str) -> bool:
    """Whether ``topic`` is in ``producer``'s cluster metadata, so that ``send_batch`` to it
    sends no metadata request naming it (item 4)."""
    return cluster_metadata(producer).partitions_for_topic(topic) is not None


# -- 5. the producer's metadata ------------------------------------------------------------------


class ClusterMetadata(Protocol):
    """What a producer's metadata says of the topics it knows, and who hears of its updates."""

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The topic's partitions; ``None`` when the metadata does not have the topic."""
        ...

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        """The partitions that have a leader now."""
        ...

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener(metadata)`` after each metadata update."""
        ...

    def remove_listener(self, listener: Callable[[Any], None]) -> None:
        """Stop calling ``listener``."""
        ...


def cluster_metadata(producer: Any) -> ClusterMetadata:
    """``producer``'s cluster metadata (item 5)."""
    cluster: ClusterMetadata = producer.client.cluster
    return cluster


async def refresh_metadata(producer: Any) -> bool:
    """Refresh ``producer``'s metadata of every topic, naming none (item 5); whether it was
    updated."""
    updated: bool = await producer.client.force_metadata_update()
    return updated


# -- 2. connection outcomes --------------------------------------------------------------------

ConnectionFailed = Callable[[str, BaseException], None]
Connected = Callable[[str], None]

_watchers: list[tuple[ConnectionFailed, Connected]] = []
_installed: list[Any] = []
"""The original ``create_conn``, once wrapped (the wrapper is installed once per process)."""


def watch_connections(failed: ConnectionFailed, connected: Connected) -> None:
    """Call ``failed(address, error)`` / ``connected(address)`` ("host:port") on the outcome of
    every broker connection any aiokafka client of this process opens. Idempotent."""
    if (failed, connected) not in _watchers:
        _watchers.append((failed, connected))
    if _installed:
        return
    import aiokafka.client as client
    from aiokafka.errors import KafkaError

    original: Callable[..., Awaitable[Any]] = client.create_conn
    _installed.append(original)

    async def create_conn(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        address = f"{host}:{port}"
        try:
            connection = await original(host, port, *args, **kwargs)
        except (OSError, TimeoutError, KafkaError) as exc:
            for on_failure, _ in list(_watchers):
                on_failure(address, exc)
            raise
        for _, on_success in list(_watchers):
            on_success(address)
        return connection

    client.create_conn = create_conn


def unwatch_connections(failed: ConnectionFailed, connected: Connected) -> None:
    """Stop calling what ``watch_connections`` was given."""
    if (failed, connected) in _watchers:
        _watchers.remove((failed, connected))


# -- 3. log lines --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogLine:
    """One of aiokafka's log calls: the logger it logs to and its message template."""

    logger: str
    template: str


CONNECT_FAILURE_LINES = frozenset(
    {
        LogLine("aiokafka", 'Unable connect to "%s:%s": %s'),
        LogLine("aiokafka", "Unable connect to node with id %s: %s"),
        LogLine("aiokafka", 'Unable to request metadata from "%s:%s": %s'),
        LogLine("aiokafka", "Unable to request metadata from node with id %s: %r"),
        LogLine("aiokafka", "Unable to update metadata from %s"),
    }
)
"""One per failed connection attempt (or per metadata refresh that found no broker), several a
second while a broker is down; ``servicekit.reachability`` reports the outage instead."""

TRANSIENT_LINES = frozenset(
    {
        LogLine("aiokafka.cluster", "Topic %s not found in cluster metadata"),
        LogLine(
            "aiokafka.consumer.group_coordinator",
            "Heartbeat session expired - marking coordinator dead",
        ),
        LogLine(
            "aiokafka.consumer.group_coordinator",
            "Marking the coordinator dead (node %s)for group %s.",
        ),
        LogLine(
            "aiokafka.consumer.group_coordinator",
            "Error sending %s to node %s [%s] -- marking coordinator dead",
        ),
    }
)
"""What a client says while a cluster or a new topic settles, whatever its arguments (lines
that only sometimes are transient are recognised by the error in their arguments)."""

_COORDINATOR = "aiokafka.consumer.group_coordinator"
CHATTER_LINES = frozenset(
    {
        LogLine(_COORDINATOR, "Discovered coordinator %s for group %s"),
        LogLine(_COORDINATOR, "Revoking previously assigned partitions %s for group %s"),
        LogLine(_COORDINATOR, "Setting newly assigned partitions %s for group %s"),
        LogLine(_COORDINATOR, "Successfully synced group %s with generation %s"),
        LogLine(_COORDINATOR, "Joined group '%s' (generation %s) with member_id %s"),
        LogLine(_COORDINATOR, "Elected group leader -- performing partition assignments using %s"),
        LogLine(
            _COORDINATOR, "OffsetCommit failed for group %s due to group error (%s), will rejoin"
        ),
        LogLine(_COORDINATOR, "(Re-)joining group %s"),
        LogLine(_COORDINATOR, "LeaveGroup request succeeded"),
        LogLine("aiokafka.consumer.subscription_state", "Updating subscribed topics to: %s"),
        LogLine("aiokafka.consumer.consumer", "Subscribed to topic(s): %s"),
        LogLine("aiokafka.consumer.consumer", "Subscribed to topic pattern: %s"),
        LogLine("aiokafka.producer.sender", "Discovered coordinator %s for group id %s"),
        LogLine("aiokafka.producer.sender", "Discovered coordinator %s for transactional id %s"),
    }
)
"""Routine client chatter, not worth an info line in the services' own logs."""


def all_lines() -> Iterable[LogLine]:
    return CONNECT_FAILURE_LINES | TRANSIENT_LINES | CHATTER_LINES


# -- 7. one JoinGroup per join -------------------------------------------------------------------

PERFORM_GROUP_JOIN_SHA256 = "ff2c2109b2e9868dc23f43643160ea3d87c40093adc03e5e8c9a45c81844ea75"
"""The source of the ``perform_group_join`` (aiokafka 0.13.0 and 0.14.0) the repair replaces."""


class JoinRepairRefused(RuntimeError):
    """The installed aiokafka's ``perform_group_join`` is not the one the repair was made for."""


def perform_group_join_digest() -> str:
    """The SHA-256 of the source of the installed aiokafka's own ``perform_group_join`` (the
    original, also once the repair is installed)."""
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    method = _repaired[0] if _repaired else CoordinatorGroupRebalance.perform_group_join
    return hashlib.sha256(inspect.getsource(method).encode()).hexdigest()


_repaired: list[Any] = []
"""The original ``perform_group_join``, once replaced."""


def join_with_all_protocols() -> None:
    """Make every consumer group member of this process send one JoinGroup per join, naming
    all its assignors' protocols (item 7). Idempotent; raises ``JoinRepairRefused`` when the
    installed aiokafka's method is not the one the repair was derived from."""
    if _repaired:
        return
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    found = perform_group_join_digest()
    if found != PERFORM_GROUP_JOIN_SHA256:
        raise JoinRepairRefused(
            f"aiokafka {AIOKAFKA_VERSION} changed CoordinatorGroupRebalance.perform_group_join "
            f"(source SHA-256 {found}): see whether it still sends one JoinGroup per assignor "
            "(aio-libs/aiokafka#1168) and derive the repair in servicekit/aiokafka_internals.py "
            "from the new code, or drop it"
        )
    _repaired.append(CoordinatorGroupRebalance.perform_group_join)
    CoordinatorGroupRebalance.perform_group_join = _perform_group_join


async def _perform_group_join(self: Any) -> Any:
    """aiokafka 0.14.0's ``CoordinatorGroupRebalance.perform_group_join`` (Apache License 2.0)
    with its JoinGroup loop taken out of the loop over assignors: the protocols are collected
    first, then joined with once. Nothing else differs, log lines included."""
    import asyncio

    import aiokafka.errors as errors
    from aiokafka.coordinator.protocol import ConsumerProtocol
    from aiokafka.protocol.group import JoinGroupRequest

    log = logging.getLogger("aiokafka.consumer.group_coordinator")
    log.info("(Re-)joining group %s", self.group_id)

    topics = self._subscription.topics
    metadata_list = []
    for assignor in self._assignors:
        metadata = assignor.metadata(topics)
        if not isinstance(metadata, bytes):
            metadata = metadata.encode()
        metadata_list.append((assignor.name, metadata))

    # for KIP-394 we may have to send a second join request
    try_join = True
    while try_join:
        try_join = False
        request = JoinGroupRequest(
            self.group_id,
            self._session_timeout_ms,
            self._rebalance_timeout_ms,
            self._coordinator.member_id,
            self._coordinator._group_instance_id,
            ConsumerProtocol.PROTOCOL_TYPE,
            metadata_list,
        )
        log.debug("Sending JoinGroup (%s) to coordinator %s", request, self.coordinator_id)
        try:
            response = await self._coordinator._send_req(request)
        except errors.KafkaError:
            # A connection error: the coordinator lookup backs off.
            return None
        if not self._subscription.active:
            # Subscription changed: ignore the response and restart the join.
            return None
        error_type = errors.for_code(response.error_code)
        if error_type is errors.MemberIdRequired:
            self._coordinator.member_id = response.member_id
            try_join = True

    if error_type is errors.NoError:
        log.debug("Join group response %s", response)
        self._coordinator.member_id = response.member_id
        self._coordinator.generation = response.generation_id
        protocol = response.group_protocol
        log.info(
            "Joined group '%s' (generation %s) with member_id %s",
            self.group_id,
            response.generation_id,
            response.member_id,
        )
        if response.leader_id == response.member_id:
            log.info("Elected group leader -- performing partition assignments using %s", protocol)
            assignment_bytes = await self._on_join_leader(response)
        else:
            assignment_bytes = await self._on_join_follower()
        if assignment_bytes is None:
            return None
        return (protocol, assignment_bytes)
    elif error_type is errors.GroupLoadInProgressError:
        log.debug(
            "Attempt to join group %s rejected since coordinator %s is loading the group.",
            self.group_id,
            self.coordinator_id,
        )
        await asyncio.sleep(self._retry_backoff_ms / 1000)
    elif error_type is errors.UnknownMemberIdError:
        self._coordinator.reset_generation()
        log.debug("Attempt to join group %s failed due to unknown member id", self.group_id)
    elif error_type in (
        errors.GroupCoordinatorNotAvailableError,
        errors.NotCoordinatorForGroupError,
    ):
        err = error_type()
        self._coordinator.coordinator_dead()
        log.debug(
            "Attempt to join group %s failed due to obsolete coordinator information: %s",
            self.group_id,
            err,
        )
    elif error_type in (
        errors.InconsistentGroupProtocolError,
        errors.InvalidSessionTimeoutError,
        errors.InvalidGroupIdError,
    ):
        err = error_type()
        log.error("Attempt to join group failed due to fatal error: %s", err)
        raise err
    elif error_type is errors.GroupAuthorizationFailedError:
        raise error_type(self.group_id)
    else:
        err = error_type()
        log.error("Unexpected error in join group '%s' response: %s", self.group_id, err)
        raise errors.KafkaError(repr(err))
    return None
