"""A sticky partition assignor for the processor's consumer group: partitions stay where they
are, and a rebalance moves the fewest that balance allows.

Why: every partition that changes owner costs a state restore on its new owner (its sessions
are read back from the changelog before it resumes). aiokafka's default assignor,
round-robin, deals the partitions out afresh on every rebalance, so one member joining or
leaving moves partitions that had no reason to move. (aiokafka's own ``StickyPartitionAssignor``
keeps its state on the class, so processors sharing a Python process would share it, and the
generation it relies on to settle stale claims is never set by aiokafka's coordinator.)

What the members send: with each JoinGroup, a member's metadata carries, in ``user_data``, the
partitions it was assigned last (from ``on_assignment``) and the epoch of that assignment, as
JSON: ``{"v": 1, "epoch": 7, "owned": {"<topic>": [0, 3, 5]}}``. The leader writes the epoch
(the highest epoch any member reported, plus one) into every member's assignment
``user_data`` as ``{"v": 1, "epoch": 8}``. ``user_data`` that is empty or cannot be read as
version 1 (another version, another assignor) counts as owning nothing; the leader never fails
on it. The ``version`` field of the metadata and assignment is the consumer protocol's schema
version and stays 0, like aiokafka's assignors.

The algorithm (``sticky_assignment``, pure and deterministic; members sorted by id, partitions
by (topic, number)):

1. a claim counts only on a partition that exists, of a topic the member subscribes to; a
   partition claimed by several members goes to the claim with the highest epoch (a member that
   was expelled and rejoined with a stale view has an older one), then the lowest member id;
2. with n partitions and m members, n mod m members may hold ceil(n/m) and the others floor(n/m)
   (exactly, so the result is always balanced); the ceil slots go to the members claiming the
   most, which keeps the most claims;
3. each member keeps its claims up to its quota, the lowest-numbered first; the rest are freed;
4. free partitions (unclaimed, released, or new) go one by one to the member below its quota with
   the fewest partitions, the lowest member id on ties.

Members subscribe to the same topic in this service. Were subscriptions to differ, the topics
whose subscribers are the same set of members are balanced among those members as above (a
member only ever gets partitions of topics it subscribes to); the balance then holds per such
set of topics, not necessarily across the total.

How it behaves, 12 partitions:

- scaling 1 -> 2: the first member keeps 0-5 and releases 6-11 to the newcomer (6 move);
  2 -> 3: each keeps 4 and releases 2 to the newcomer (4 move); 3 -> 2: the leaving member's 4
  are dealt to the two others, 2 each, nobody else's move; 2 -> 1: the survivor keeps its 6 and
  gets the other 6. Each step moves the minimum that balance requires.
- a rolling deploy: a restarted pod comes back with a new member id and an empty claim, so it
  gets what is free: the partitions of the member that left (while it was gone the others picked
  those up; when it returns each of them releases its highest-numbered claims above the new
  quota). Each restart therefore moves about 2 x n/m partitions instead of reshuffling all.

What it does not change: the group still uses the eager protocol, so during a rebalance every
member revokes (pauses and commits) all its partitions until the new assignment arrives. The
assignor only decides which partitions change owner afterwards; a member given back what it had
does not read it again (the runtime keeps its sessions across the rebalance, ``kept``).

Each consumer needs its own instance (the instance remembers that consumer's last assignment):
``AIOKafkaConsumer(..., partition_assignment_strategy=(StickyAssignor(),))``. The group uses a
protocol every member offers: the processor offers ``meetings-sticky`` first and aiokafka's
``roundrobin`` second, so a rolling deploy from a version that only offered round-robin goes on
with round-robin until the last old member has left, then switches.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from aiokafka.structs import TopicPartition

from servicekit.aiokafka_internals import (
    AbstractPartitionAssignor,
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

logger = logging.getLogger(__name__)

ASSIGNOR_NAME = "meetings-sticky"
PROTOCOL_VERSION = 0
"""The consumer protocol's schema version in metadata and assignments (not our encoding's)."""
USER_DATA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class MemberClaim:
    """What one member told the leader: the topics it subscribes to, the partitions it owned
    after the last assignment it received, and that assignment's epoch."""

    subscription: frozenset[str]
    owned: frozenset[TopicPartition] = frozenset()
    epoch: int = 0


class _MemberUserData(msgspec.Struct, frozen=True):
    """``ConsumerProtocolMemberMetadata.user_data``, version 1."""

    v: Literal[1]
    owned: dict[str, list[int]] = msgspec.field(default_factory=dict)
    epoch: int = 0


class _AssignmentUserData(msgspec.Struct, frozen=True):
    """``ConsumerProtocolMemberAssignment.user_data``, version 1."""

    v: Literal[1]
    epoch: int = 0


def encode_member_user_data(owned: Iterable[TopicPartition], epoch: int) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(set(owned)):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return msgspec.json.encode(_MemberUserData(v=USER_DATA_VERSION, owned=by_topic, epoch=epoch))


def decode_member_user_data(user_data: bytes | None) -> tuple[frozenset[TopicPartition], int]:
    """The partitions a member claims and their epoch; nothing (and epoch 0) when ``user_data``
    is empty or not version 1 of this encoding."""
    if not user_data:
        return frozenset(), 0
    try:
        data = msgspec.json.decode(user_data, type=_MemberUserData)
    except msgspec.DecodeError:  # ValidationError is a DecodeError too
        return frozenset(), 0
    owned = frozenset(
        TopicPartition(topic, partition)
        for topic, partitions in data.owned.items()
        for partition in partitions
    )
    return owned, data.epoch


def encode_assignment_user_data(epoch: int) -> bytes:
    return msgspec.json.encode(_AssignmentUserData(v=USER_DATA_VERSION, epoch=epoch))


def decode_assignment_user_data(user_data: bytes | None) -> int:
    """The epoch the leader gave an assignment; 0 when it cannot be read."""
    if not user_data:
        return 0
    try:
        return msgspec.json.decode(user_data, type=_AssignmentUserData).epoch
    except msgspec.DecodeError:
        return 0


def resolve_claims(
    partitions: Collection[TopicPartition], members: Mapping[str, MemberClaim]
) -> dict[str, list[TopicPartition]]:
    """Step 1: each member's valid claims, sorted, no partition claimed by two members.

    A claim is valid on an existing partition of a topic the member subscribes to; of several
    claims on one partition, the highest epoch wins, then the lowest member id.
    """
    existing = set(partitions)
    winner: dict[TopicPartition, tuple[int, str]] = {}
    for member_id, claim in members.items():
        for tp in claim.owned:
            if tp not in existing or tp.topic not in claim.subscription:
                continue
            candidate = (-claim.epoch, member_id)
            if tp not in winner or candidate < winner[tp]:
                winner[tp] = candidate
    resolved: dict[str, list[TopicPartition]] = {member_id: [] for member_id in members}
    for tp, (_, member_id) in sorted(winner.items()):
        resolved[member_id].append(tp)
    return resolved


def sticky_assignment(
    partitions: Collection[TopicPartition], members: Mapping[str, MemberClaim]
) -> dict[str, list[TopicPartition]]:
    """Assign ``partitions`` to ``members`` (every member gets an entry, lists sorted).

    Balanced (floor or ceil of n/m each, among the members subscribed to the same topics), and
    subject to that, every member keeps as many of its claims as possible. Partitions of topics
    nobody subscribes to are left out. Deterministic: the same inputs give the same result,
    whatever the order of ``partitions`` and ``members``.
    """
    resolved = resolve_claims(partitions, members)
    result: dict[str, list[TopicPartition]] = {member_id: [] for member_id in sorted(members)}

    # Topics grouped by the set of members subscribed to them; one group in this service.
    groups: dict[tuple[str, ...], list[TopicPartition]] = {}
    subscribers: dict[str, tuple[str, ...]] = {}
    for tp in sorted(set(partitions)):
        if tp.topic not in subscribers:
            subscribers[tp.topic] = tuple(
                member_id
                for member_id in sorted(members)
                if tp.topic in members[member_id].subscription
            )
        if subscribers[tp.topic]:
            groups.setdefault(subscribers[tp.topic], []).append(tp)

    for member_ids, group_partitions in sorted(groups.items()):
        _balance(group_partitions, member_ids, resolved, result)
    for assigned in result.values():
        assigned.sort()
    return result


def _balance(
    partitions: list[TopicPartition],
    member_ids: tuple[str, ...],
    resolved: Mapping[str, list[TopicPartition]],
    result: dict[str, list[TopicPartition]],
) -> None:
    """Steps 2 to 4 for ``partitions`` (sorted) among ``member_ids`` (sorted, not empty)."""
    in_group = set(partitions)
    claims = {
        member_id: [tp for tp in resolved[member_id] if tp in in_group] for member_id in member_ids
    }
    floor, ceil_slots = divmod(len(partitions), len(member_ids))
    # Ceil slots to the members claiming most; then to those holding least elsewhere.
    by_claims = sorted(
        member_ids,
        key=lambda member_id: (-len(claims[member_id]), len(result[member_id]), member_id),
    )
    quota = {
        member_id: floor + (1 if rank < ceil_slots else 0)
        for rank, member_id in enumerate(by_claims)
    }

    taken: set[TopicPartition] = set()
    count: dict[str, int] = {}
    for member_id in member_ids:
        kept = claims[member_id][: quota[member_id]]  # the lowest-numbered claims
        result[member_id].extend(kept)
        taken.update(kept)
        count[member_id] = len(kept)

    below_quota = [
        (count[member_id], member_id)
        for member_id in member_ids
        if count[member_id] < quota[member_id]
    ]
    heapq.heapify(below_quota)
    for tp in partitions:
        if tp in taken:
            continue
        held, member_id = heapq.heappop(below_quota)  # never empty: the quotas sum to n
        result[member_id].append(tp)
        if held + 1 < quota[member_id]:
            heapq.heappush(below_quota, (held + 1, member_id))


class StickyAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka partition assignor running ``sticky_assignment``; one instance per consumer.

    aiokafka calls ``name``, ``metadata``, ``assign`` and ``on_assignment`` on the objects given
    as ``partition_assignment_strategy``, so these are ordinary methods of the instance and its
    state (the last assignment this consumer received) is its own.
    """

    name = ASSIGNOR_NAME
    version = PROTOCOL_VERSION

    def __init__(self) -> None:
        self._owned: frozenset[TopicPartition] = frozenset()
        self._epoch = 0

    @property
    def owned(self) -> frozenset[TopicPartition]:
        """The partitions of this consumer's last assignment (what it claims when rejoining)."""
        return self._owned

    @property
    def epoch(self) -> int:
        return self._epoch

    def metadata(self, topics: Iterable[str]) -> Any:
        """The JoinGroup metadata: subscription, and the partitions this consumer owns."""
        subscription = set(topics)
        owned = (tp for tp in self._owned if tp.topic in subscription)
        return ConsumerProtocolMemberMetadata(
            PROTOCOL_VERSION, sorted(subscription), encode_member_user_data(owned, self._epoch)
        )

    def on_assignment(self, assignment: Any) -> None:
        self._owned = frozenset(assignment.partitions())
        self._epoch = decode_assignment_user_data(assignment.user_data)

    def assign(self, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
        """Run on the group leader: every member's assignment from its metadata."""
        claims: dict[str, MemberClaim] = {}
        for member_id, metadata in members.items():
            owned, epoch = decode_member_user_data(metadata.user_data)
            claims[member_id] = MemberClaim(
                subscription=frozenset(metadata.subscription or ()), owned=owned, epoch=epoch
            )

        topics: set[str] = set()
        for claim in claims.values():
            topics |= claim.subscription
        partitions: list[TopicPartition] = []
        for topic in sorted(topics):
            numbers = cluster.partitions_for_topic(topic)
            if numbers is None:
                logger.warning("sticky assignor: no partition metadata for topic %s", topic)
                continue
            partitions.extend(TopicPartition(topic, number) for number in numbers)

        assignment = sticky_assignment(partitions, claims)
        epoch = max((claim.epoch for claim in claims.values()), default=0) + 1
        user_data = encode_assignment_user_data(epoch)
        kept = sum(
            len(set(assigned) & claims[member_id].owned)
            for member_id, assigned in assignment.items()
        )
        logger.info(
            "sticky assignment %d: %d partitions to %d members, %d stay with their owner, "
            "%d move or are new",
            epoch,
            sum(len(assigned) for assigned in assignment.values()),
            len(assignment),
            kept,
            sum(len(assigned) for assigned in assignment.values()) - kept,
        )
        return {
            member_id: ConsumerProtocolMemberAssignment(
                PROTOCOL_VERSION, _by_topic(assigned), user_data
            )
            for member_id, assigned in assignment.items()
        }


def _by_topic(partitions: Iterable[TopicPartition]) -> list[tuple[str, list[int]]]:
    grouped: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return sorted(grouped.items())
