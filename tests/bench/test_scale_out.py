"""The scale-out benchmark's own logic: when the group counts as settled, how much of the backlog
its committed offsets cover, the ratio and its verdict, finding the broker's socket. Broker-free."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from bench.scale_out import (
    GOAL_RATIO,
    CpuShare,
    ScaleOut,
    committed_records,
    listening_inodes,
    split_evenly,
)
from schemas.topics import RAW as TOPIC_RAW

RAW = TOPIC_RAW.name_under("bench-x.")


def test_one_member_owning_every_partition_has_settled() -> None:
    assert split_evenly([list(range(12))], 12)


def test_two_members_sharing_the_partitions_evenly_have_settled() -> None:
    assert split_evenly([[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 11]], 12)


@pytest.mark.parametrize(
    "owned",
    [
        pytest.param([list(range(12)), None], id="second member not ready yet"),
        pytest.param([list(range(12)), []], id="second member ready with nothing"),
        pytest.param([[0, 1, 2, 3, 4, 5, 6], [6, 7, 8, 9, 10, 11]], id="a partition twice"),
        pytest.param([[0, 1, 2, 3, 4], [6, 7, 8, 9, 10, 11]], id="a partition unowned"),
        pytest.param([[0, 1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11]], id="uneven split"),
        pytest.param([], id="no member"),
    ],
)
def test_the_group_has_not_settled(owned: list[list[int] | None]) -> None:
    assert not split_evenly(owned, 12)


def test_a_split_within_one_partition_is_even_when_the_count_does_not_divide() -> None:
    assert split_evenly([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]], 11)


def test_committed_offsets_cover_up_to_each_partitions_end() -> None:
    ends = {TopicPartition(RAW, 0): 100, TopicPartition(RAW, 1): 50, TopicPartition(RAW, 2): 10}
    offsets = {
        TopicPartition(RAW, 0): 40,
        TopicPartition(RAW, 1): 51,  # past the last record: at the transaction's marker
        # partition 2: nothing committed yet
    }
    assert committed_records(offsets, ends) == 40 + 50


def test_the_backlog_is_covered_once_every_partition_reached_its_end() -> None:
    ends = {TopicPartition(RAW, 0): 100, TopicPartition(RAW, 1): 50}
    assert committed_records(dict(ends), ends) == sum(ends.values())


def test_the_ratio_is_of_the_medians_and_meets_the_goal_at_its_bound() -> None:
    result = ScaleOut.of({1: [10_000.0, 8_000.0, 11_000.0], 2: [13_000.0, 30_000.0, 12_000.0]})
    assert (result.one, result.two) == (10_000.0, 13_000.0)
    assert result.ratio == pytest.approx(GOAL_RATIO)
    assert result.met
    assert result.goal().met
    assert result.goal().shown == "1.30x"


def test_a_ratio_below_the_goal_misses_it() -> None:
    result = ScaleOut.of({1: [10_000.0], 2: [12_000.0]})
    assert not result.met
    assert result.goal().verdict == "MISSED"


def test_the_rest_of_the_cpu_is_what_the_machine_used_beyond_the_named_processes() -> None:
    share = CpuShare(processors=(5.0, 4.0), broker=6.0, bench=0.5, busy=19.0, total=20.0)
    assert share.rest == pytest.approx(3.5)
    unknown_broker = CpuShare(processors=(5.0,), broker=None, bench=0.5, busy=10.0, total=20.0)
    assert unknown_broker.rest == pytest.approx(4.5)


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4B6C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81234 1 0
   1: 0100007F:4B6C 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 81299 1 0
   2: 0100007F:4AA4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 70000 1 0
"""


def test_the_listening_socket_of_a_port_is_found_not_its_connections() -> None:
    assert listening_inodes(PROC_NET_TCP, 0x4B6C) == {"81234"}  # 19308
    assert listening_inodes(PROC_NET_TCP, 9092) == set()
