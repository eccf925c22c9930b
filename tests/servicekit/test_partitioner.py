"""The fast partitioner is Kafka's default partitioner, key for key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from servicekit.partitioner import KeyPartitioner, default_partition, murmur2


@given(st.binary(max_size=300))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.binary(min_size=1, max_size=120), st.integers(min_value=1, max_value=64))
def test_keys_land_where_the_default_partitioner_puts_them(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert default_partition(key, partitions, partitions) == DefaultPartitioner()(
        key, partitions, partitions
    )


def test_known_values_from_the_java_client() -> None:
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0xFFFFFFFF == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") & 0xFFFFFFFF == (-1486304829) & 0xFFFFFFFF
    assert (
        murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") & 0xFFFFFFFF
        == (-58897971) & 0xFFFFFFFF
    )
    assert murmur2(b"abc") & 0xFFFFFFFF == 479470107


@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=60),
    st.integers(min_value=1, max_value=64),
)
def test_the_remembering_partitioner_agrees_with_the_default_one_past_its_capacity(
    keys: list[bytes], count: int
) -> None:
    partitioner = KeyPartitioner(count, capacity=8)
    partitions = list(range(count))
    for key in keys + keys:  # the second round finds some remembered, some forgotten
        assert partitioner(key) == default_partition(key, partitions, partitions)
    assert len(partitioner._known) <= 8
