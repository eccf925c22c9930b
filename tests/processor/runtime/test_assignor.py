"""The sticky partition assignor: the pure algorithm (minimal moves, balance, claims that
conflict or no longer exist, determinism, properties against a brute-force optimum), the aiokafka
assignor around it (encodings, per-instance state, undecodable user_data), and a real consumer
group scaled 1 -> 2 -> 3 -> 2 -> 1 on the broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.structs import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from processor.runtime.assignor import (
    ASSIGNOR_NAME,
    MemberClaim,
    StickyAssignor,
    decode_assignment_user_data,
    decode_member_user_data,
    encode_member_user_data,
    sticky_assignment,
)
from tests.conftest import TopicFactory
from tests.kafka_helpers import unique_name, wait_until

Assignment = dict[str, list[TopicPartition]]

TOPIC = "raw"


def tps(*numbers: int, topic: str = TOPIC) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for number in numbers]


def claim(
    owned: Iterable[TopicPartition] = (), *, epoch: int = 0, topics: Iterable[str] = (TOPIC,)
) -> MemberClaim:
    return MemberClaim(frozenset(topics), frozenset(owned), epoch)


def claims_from(
    assignment: Mapping[str, Iterable[TopicPartition]], epoch: int
) -> dict[str, MemberClaim]:
    """Every member claims what ``assignment`` gave it, as after a completed rebalance."""
    return {member_id: claim(owned, epoch=epoch) for member_id, owned in assignment.items()}


def owners(assignment: Mapping[str, Iterable[TopicPartition]]) -> dict[TopicPartition, str]:
    return {tp: member_id for member_id, owned in assignment.items() for tp in owned}


def moved(before: Mapping[str, Iterable[TopicPartition]], after: Assignment) -> int:
    """Partitions that had an owner before and have another one now."""
    previous, now = owners(before), owners(after)
    return sum(1 for tp, member_id in previous.items() if now.get(tp) != member_id)


def assert_balanced(partitions: Collection[TopicPartition], result: Assignment) -> None:
    """Each partition assigned exactly once; floor(n/m) or ceil(n/m) each, n mod m at ceil."""
    assigned = [tp for owned in result.values() for tp in owned]
    assert sorted(assigned) == sorted(set(partitions))
    floor, ceil_count = divmod(len(set(partitions)), len(result))
    sizes = [len(owned) for owned in result.values()]
    assert set(sizes) <= {floor, floor + 1}
    assert sizes.count(floor + 1) == ceil_count
    for owned in result.values():
        assert owned == sorted(owned)


# --- the pure algorithm ---------------------------------------------------------------------


def test_scaling_1_2_3_2_1_moves_the_minimum_each_step() -> None:
    partitions = tps(*range(12))

    one = sticky_assignment(partitions, {"a": claim()})
    assert one == {"a": partitions}

    two = sticky_assignment(partitions, {**claims_from(one, 1), "b": claim()})
    assert_balanced(partitions, two)
    assert moved(one, two) == 6
    assert two == {"a": tps(0, 1, 2, 3, 4, 5), "b": tps(6, 7, 8, 9, 10, 11)}

    three = sticky_assignment(partitions, {**claims_from(two, 2), "c": claim()})
    assert_balanced(partitions, three)
    assert moved(two, three) == 4
    assert set(three["a"]) <= set(two["a"])
    assert set(three["b"]) <= set(two["b"])

    survivors = {member_id: three[member_id] for member_id in ("a", "c")}
    back_to_two = sticky_assignment(partitions, claims_from(survivors, 3))
    assert_balanced(partitions, back_to_two)
    assert moved(three, back_to_two) == 4  # the leaving member's, nobody else's
    assert moved(survivors, back_to_two) == 0
    assert set(back_to_two["a"]) | set(back_to_two["c"]) == set(partitions)

    back_to_one = sticky_assignment(partitions, claims_from({"c": back_to_two["c"]}, 4))
    assert back_to_one == {"c": partitions}
    assert moved(back_to_two, back_to_one) == 6


def test_a_rolling_restart_gives_the_new_pod_what_the_others_release() -> None:
    partitions = tps(*range(12))
    before = {"a": tps(0, 1, 2, 3), "b": tps(4, 5, 6, 7), "c": tps(8, 9, 10, 11)}
    without_b = sticky_assignment(partitions, claims_from({"a": before["a"], "c": before["c"]}, 1))
    assert moved(before, without_b) == 4
    # b comes back as a new member (new id) with nothing to claim.
    after = sticky_assignment(partitions, {**claims_from(without_b, 2), "b2": claim()})
    assert_balanced(partitions, after)
    assert moved(without_b, after) == 4
    assert set(after["a"]) <= set(without_b["a"])
    assert set(after["c"]) <= set(without_b["c"])


def test_members_claiming_more_get_the_ceil_slots() -> None:
    partitions = tps(*range(7))
    result = sticky_assignment(
        partitions, {"a": claim(tps(0)), "b": claim(tps(1, 2, 3, 4, 5)), "c": claim()}
    )
    assert_balanced(partitions, result)
    # 7 over 3: one member gets 3. b claims most: it keeps three (its lowest-numbered).
    assert result["b"] == tps(1, 2, 3)
    # The free 4, 5, 6 go one by one to whoever holds fewest (c, then a, then c).
    assert result["a"] == tps(0, 5)
    assert result["c"] == tps(4, 6)


def test_a_conflicting_claim_goes_to_the_newer_epoch_then_the_lower_member_id() -> None:
    partitions = tps(*range(4))
    stale_vs_fresh = sticky_assignment(
        partitions, {"a": claim(tps(0, 1), epoch=3), "b": claim(tps(0, 1), epoch=4)}
    )
    assert stale_vs_fresh == {"a": tps(2, 3), "b": tps(0, 1)}

    same_epoch = sticky_assignment(
        partitions, {"b": claim(tps(0, 1), epoch=4), "a": claim(tps(1, 2), epoch=4)}
    )
    assert same_epoch == {"a": tps(1, 2), "b": tps(0, 3)}


def test_claims_of_partitions_that_no_longer_exist_are_ignored() -> None:
    partitions = tps(*range(4))
    result = sticky_assignment(
        partitions,
        {
            # a claims more than b, but only one of its claims is real.
            "a": claim([*tps(3, 7, 8), *tps(0, topic="deleted")]),
            "b": claim(tps(0, 1)),
        },
    )
    assert result == {"a": tps(2, 3), "b": tps(0, 1)}


def test_claims_on_topics_a_member_does_not_subscribe_to_are_ignored() -> None:
    partitions = [*tps(0, 1, topic="a"), *tps(0, 1, topic="b")]
    result = sticky_assignment(
        partitions,
        {
            "x": claim(tps(0, 1, topic="b"), topics=["a"]),
            "y": claim(tps(0, 1, topic="a"), topics=["a", "b"]),
        },
    )
    # Topics a and b have different subscribers: each is balanced among its own.
    assert result == {"x": tps(1, topic="a"), "y": [*tps(0, topic="a"), *tps(0, 1, topic="b")]}


def test_partitions_of_topics_nobody_subscribes_to_are_left_out() -> None:
    result = sticky_assignment([*tps(0), *tps(0, topic="other")], {"a": claim()})
    assert result == {"a": tps(0)}


def test_no_partitions_and_more_members_than_partitions() -> None:
    assert sticky_assignment([], {"a": claim(tps(0)), "b": claim()}) == {"a": [], "b": []}
    partitions = tps(0, 1)
    result = sticky_assignment(partitions, {"a": claim(), "b": claim(tps(1)), "c": claim()})
    assert result == {"a": tps(0), "b": tps(1), "c": []}


def test_the_result_does_not_depend_on_input_order() -> None:
    partitions = tps(*range(10))
    members = {
        "m3": claim(tps(0, 1, 2, 9), epoch=2),
        "m1": claim(tps(2, 3), epoch=1),
        "m2": claim(),
        "m0": claim(tps(9, 8, 7), epoch=2),
    }
    expected = sticky_assignment(partitions, members)
    assert_balanced(partitions, expected)
    for permutation in itertools.islice(itertools.permutations(members), 24):
        shuffled = {member_id: members[member_id] for member_id in permutation}
        assert sticky_assignment(list(reversed(partitions)), shuffled) == expected


# --- properties -----------------------------------------------------------------------------


def resolved_claims(
    partitions: Collection[TopicPartition], members: Mapping[str, MemberClaim]
) -> dict[str, set[TopicPartition]]:
    """Reference: each existing, subscribed partition to its claimant of the highest epoch, then
    the lowest member id."""
    resolved: dict[str, set[TopicPartition]] = {member_id: set() for member_id in members}
    for tp in set(partitions):
        claimants = [
            (-claimed.epoch, member_id)
            for member_id, claimed in members.items()
            if tp in claimed.owned and tp.topic in claimed.subscription
        ]
        if claimants:
            resolved[min(claimants)[1]].add(tp)
    return resolved


def most_claims_kept(
    partitions: Collection[TopicPartition], claims: Mapping[str, set[TopicPartition]]
) -> int:
    """The bound: sum of min(claims, quota), the ceil slots given where they keep one more."""
    floor, ceil_count = divmod(len(set(partitions)), len(claims))
    above_floor = sum(1 for claimed in claims.values() if len(claimed) > floor)
    return sum(min(len(claimed), floor) for claimed in claims.values()) + min(
        ceil_count, above_floor
    )


def kept(result: Assignment, claims: Mapping[str, set[TopicPartition]]) -> int:
    return sum(len(set(owned) & claims[member_id]) for member_id, owned in result.items())


member_ids = st.lists(
    st.text(alphabet="abcdefgh", min_size=1, max_size=3), min_size=1, max_size=7, unique=True
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[TopicPartition], dict[str, MemberClaim]]:
    """Random partitions of one or two topics and members with random (overlapping, stale,
    non-existent) claims, or claims left by a previous assignment among other members."""
    topics = draw(st.sampled_from([(TOPIC,), ("a", "b")]))
    partitions = [
        TopicPartition(topic, number)
        for topic in topics
        for number in range(draw(st.integers(0, 16)))
    ]
    ids = draw(member_ids)
    if draw(st.booleans()):
        previous_owner = {
            tp: draw(st.sampled_from([*ids, "gone-1", "gone-2", None])) for tp in partitions
        }
        members = {
            member_id: claim(
                [tp for tp, owner in previous_owner.items() if owner == member_id],
                epoch=5,
                topics=topics,
            )
            for member_id in ids
        }
    else:
        any_partition = st.builds(
            TopicPartition, st.sampled_from([*topics, "deleted"]), st.integers(0, 20)
        )
        members = {
            member_id: claim(
                draw(st.frozensets(any_partition, max_size=12)),
                epoch=draw(st.integers(0, 3)),
                topics=topics,
            )
            for member_id in ids
        }
    return draw(st.permutations(partitions)), members


@given(scenarios())
def test_every_partition_once_balanced_and_the_most_claims_kept(
    scenario: tuple[list[TopicPartition], dict[str, MemberClaim]],
) -> None:
    partitions, members = scenario
    result = sticky_assignment(partitions, members)
    assert list(result) == sorted(members)
    assert_balanced(partitions, result)

    claims = resolved_claims(partitions, members)
    assert kept(result, claims) == most_claims_kept(partitions, claims)
    for member_id, owned in result.items():
        # What a member keeps is its lowest-numbered claims, as many as its quota allows.
        assert sorted(set(owned) & claims[member_id]) == sorted(claims[member_id])[: len(owned)]

    reordered = dict(reversed(list(members.items())))
    assert sticky_assignment(list(reversed(partitions)), reordered) == result


@st.composite
def small_disjoint_scenarios(
    draw: st.DrawFn,
) -> tuple[list[TopicPartition], dict[str, MemberClaim]]:
    partitions = tps(*range(draw(st.integers(0, 6))))
    ids = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True))
    owner = {tp: draw(st.sampled_from([*ids, None])) for tp in partitions}
    members = {
        member_id: claim(
            [tp for tp, claimed_by in owner.items() if claimed_by == member_id]
            + draw(st.lists(st.sampled_from(tps(6, 7)), max_size=2)),
            epoch=draw(st.integers(0, 2)),
        )
        for member_id in ids
    }
    return partitions, members


def best_by_brute_force(
    partitions: list[TopicPartition], members: Mapping[str, MemberClaim]
) -> int:
    """The most claims any balanced assignment keeps, trying every assignment."""
    ids = sorted(members)
    floor, ceil_count = divmod(len(partitions), len(ids))
    best = -1
    for choice in itertools.product(ids, repeat=len(partitions)):
        sizes = [choice.count(member_id) for member_id in ids]
        if not set(sizes) <= {floor, floor + 1} or sizes.count(floor + 1) != ceil_count:
            continue
        best = max(
            best,
            sum(
                1
                for tp, member_id in zip(partitions, choice, strict=True)
                if tp in members[member_id].owned
            ),
        )
    return best


@given(small_disjoint_scenarios())
def test_the_claims_kept_match_a_brute_force_optimum(
    scenario: tuple[list[TopicPartition], dict[str, MemberClaim]],
) -> None:
    partitions, members = scenario
    result = sticky_assignment(partitions, members)
    assert_balanced(partitions, result)
    claims = {member_id: set(claimed.owned) for member_id, claimed in members.items()}
    assert kept(result, claims) == best_by_brute_force(partitions, members)


# --- the aiokafka assignor ------------------------------------------------------------------


class Cluster:
    """The part of aiokafka's ClusterMetadata an assignor uses."""

    def __init__(self, **partition_counts: int) -> None:
        self._counts = partition_counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self._counts.get(topic)
        return None if count is None else set(range(count))


def rebalance(
    cluster: Cluster, assignors: Mapping[str, StickyAssignor], topics: Collection[str] = (TOPIC,)
) -> dict[str, set[TopicPartition]]:
    """One group rebalance as aiokafka runs it, through the wire encodings: every member's
    metadata to the leader (the lowest id), its assignments back to each member."""
    metadata = {
        member_id: ConsumerProtocolMemberMetadata.decode(assignor.metadata(set(topics)).encode())
        for member_id, assignor in assignors.items()
    }
    leader = assignors[min(assignors)]
    assignments = leader.assign(cluster, metadata)
    assert set(assignments) == set(assignors)
    for member_id, assignor in assignors.items():
        assignor.on_assignment(
            ConsumerProtocolMemberAssignment.decode(assignments[member_id].encode())
        )
    return {member_id: set(assignor.owned) for member_id, assignor in assignors.items()}


def test_the_assignor_offers_its_name_and_starts_claiming_nothing() -> None:
    assignor = StickyAssignor()
    assert assignor.name == ASSIGNOR_NAME == "meetings-sticky"
    metadata = assignor.metadata({TOPIC})
    assert metadata.version == 0
    assert metadata.subscription == [TOPIC]
    assert json.loads(metadata.user_data) == {"v": 1, "owned": {}, "epoch": 0}


def test_the_user_data_is_small_versioned_json() -> None:
    encoded = encode_member_user_data([*tps(2, 0), *tps(1, topic="other")], epoch=7)
    assert json.loads(encoded) == {"v": 1, "owned": {TOPIC: [0, 2], "other": [1]}, "epoch": 7}
    assert decode_member_user_data(encoded) == (
        frozenset([*tps(0, 2), *tps(1, topic="other")]),
        7,
    )


def test_each_instance_keeps_its_own_state_and_epochs_advance() -> None:
    cluster = Cluster(raw=12)
    first, second = StickyAssignor(), StickyAssignor()
    alone = rebalance(cluster, {"m-1": first})
    assert alone == {"m-1": set(tps(*range(12)))}
    assert second.owned == frozenset()
    assert json.loads(second.metadata({TOPIC}).user_data)["owned"] == {}

    both = rebalance(cluster, {"m-1": first, "m-2": second})
    assert both == {"m-1": set(tps(*range(6))), "m-2": set(tps(*range(6, 12)))}
    assert first.epoch == second.epoch == 2
    assert json.loads(first.metadata({TOPIC}).user_data) == {
        "v": 1,
        "owned": {TOPIC: [0, 1, 2, 3, 4, 5]},
        "epoch": 2,
    }


def test_a_member_expelled_and_back_with_a_stale_view_loses_its_conflicting_claims() -> None:
    cluster = Cluster(raw=12)
    first, second = StickyAssignor(), StickyAssignor()
    rebalance(cluster, {"m-1": first})
    rebalance(cluster, {"m-1": first, "m-2": second})
    assert first.owned == frozenset(tps(*range(6)))
    # m-1 is expelled (say, a long pause): m-2 takes everything, m-1 still believes it owns 0-5.
    rebalance(cluster, {"m-2": second})
    assert first.owned == frozenset(tps(*range(6)))
    assert first.epoch < second.epoch

    back = rebalance(cluster, {"m-1": first, "m-2": second})
    # m-2's newer claims win: it keeps 0-5, the lowest of its twelve, m-1 gets the rest.
    assert back == {"m-1": set(tps(*range(6, 12))), "m-2": set(tps(*range(6)))}


@pytest.mark.parametrize(
    "user_data",
    [
        None,
        b"",
        b"\x00\x01garbage",
        b'{"v": 2, "owned": {"raw": [0, 1, 2, 3, 4, 5, 6, 7]}}',
        b'{"v": 1, "owned": {"raw": ["zero"]}}',
        b'{"v": 1, "owned": [0, 1]}',
        b"[1, 2, 3]",
        StickyPartitionAssignor._metadata([TOPIC], tps(*range(8)), 3).user_data,
    ],
    ids=[
        "none",
        "empty",
        "garbage",
        "another-version",
        "wrong-types",
        "wrong-shape",
        "not-an-object",
        "aiokafka-sticky",
    ],
)
def test_undecodable_user_data_claims_nothing_and_never_fails_the_leader(
    user_data: bytes | None,
) -> None:
    assert decode_member_user_data(user_data) == (frozenset(), 0)
    valid = StickyAssignor()
    members = {
        "a-odd": ConsumerProtocolMemberMetadata(0, [TOPIC], user_data),
        "b-valid": ConsumerProtocolMemberMetadata(
            0, [TOPIC], encode_member_user_data(tps(0, 1, 2), epoch=1)
        ),
    }
    assignments = valid.assign(Cluster(raw=8), members)
    owned = {member_id: assignment.partitions() for member_id, assignment in assignments.items()}
    # b-valid keeps its three; a-odd claims nothing, so it takes free ones until it holds as
    # many as b-valid, then they alternate.
    assert owned == {"a-odd": tps(3, 4, 5, 6), "b-valid": tps(0, 1, 2, 7)}
    assert decode_assignment_user_data(assignments["a-odd"].user_data) == 2


@pytest.mark.parametrize("user_data", [None, b"", b"nonsense", b'{"v": 9, "epoch": 4}'])
def test_an_unreadable_assignment_epoch_counts_as_zero(user_data: bytes | None) -> None:
    assignor = StickyAssignor()
    assignor.on_assignment(ConsumerProtocolMemberAssignment(0, [(TOPIC, [1, 3])], user_data))
    assert assignor.owned == frozenset(tps(1, 3))
    assert assignor.epoch == 0


def test_a_topic_without_metadata_is_skipped() -> None:
    members = {
        "a": ConsumerProtocolMemberMetadata(0, [TOPIC, "unknown"], b""),
        "b": ConsumerProtocolMemberMetadata(0, [TOPIC], b""),
    }
    assignments = StickyAssignor().assign(Cluster(raw=2), members)
    assert {m: a.partitions() for m, a in assignments.items()} == {"a": tps(0), "b": tps(1)}


# --- a real consumer group ------------------------------------------------------------------


@dataclass
class Member:
    name: str
    consumer: AIOKafkaConsumer
    assignor: StickyAssignor
    poller: asyncio.Task[None]

    def owned(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())


async def _poll(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=100)


class Group:
    """Consumers of one group, each with its own assignor, polling in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._group_id = unique_name("sticky")
        self.members: list[Member] = []
        self.epoch = 0

    async def start(self, name: str) -> Member:
        assignor = StickyAssignor()
        consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            partition_assignment_strategy=(assignor,),
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        member = Member(name, consumer, assignor, asyncio.create_task(_poll(consumer)))
        self.members.append(member)
        return member

    async def stop(self, member: Member) -> None:
        self.members.remove(member)
        member.poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await member.poller
        await member.consumer.stop()  # leaves the group: a rebalance at once

    async def settled(self, partitions: set[TopicPartition]) -> dict[str, set[TopicPartition]]:
        """Wait for a new assignment that every current member has received and that covers
        all partitions; return it by member name."""

        def received() -> bool:
            epochs = {member.assignor.epoch for member in self.members}
            owned = [member.owned() for member in self.members]
            return (
                len(epochs) == 1
                and epochs.pop() > self.epoch
                and sum(len(mine) for mine in owned) == len(partitions)
                and set[TopicPartition]().union(*owned) == partitions
            )

        await wait_until(received, what=f"members {[m.name for m in self.members]} to settle")
        self.epoch = self.members[0].assignor.epoch
        return {member.name: member.owned() for member in self.members}

    async def close(self) -> None:
        for member in list(self.members):
            await self.stop(member)


@contextlib.asynccontextmanager
async def consumer_group(bootstrap: str, topic: str) -> AsyncIterator[Group]:
    group = Group(bootstrap, topic)
    try:
        yield group
    finally:
        await group.close()


async def test_a_real_group_scaled_1_2_3_2_1_moves_only_what_balance_requires(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic("sticky", partitions=12)
    everything = {TopicPartition(topic, number) for number in range(12)}

    def numbers(owned: set[TopicPartition]) -> list[int]:
        return sorted(tp.partition for tp in owned)

    async with consumer_group(kafka_bootstrap, topic) as group:
        a = await group.start("a")
        one = await group.settled(everything)
        assert one == {"a": everything}

        await group.start("b")
        two = await group.settled(everything)
        assert numbers(two["a"]) == [0, 1, 2, 3, 4, 5]  # a keeps its lowest six
        assert numbers(two["b"]) == [6, 7, 8, 9, 10, 11]

        c = await group.start("c")
        three = await group.settled(everything)
        assert [len(three[name]) for name in "abc"] == [4, 4, 4]
        assert three["a"] <= two["a"]
        assert three["b"] <= two["b"]  # so exactly c's four moved, two from each

        b = next(member for member in group.members if member.name == "b")
        await group.stop(b)
        back_to_two = await group.settled(everything)
        assert [len(back_to_two[name]) for name in "ac"] == [6, 6]
        assert back_to_two["a"] >= three["a"]
        assert back_to_two["c"] >= three["c"]  # only b's four moved

        await group.stop(a)
        back_to_one = await group.settled(everything)
        assert back_to_one == {"c": everything}
        assert c.assignor.owned == frozenset(everything)
