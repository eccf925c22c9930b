"""Kafka's default key partitioning (murmur2 of the key bytes), computed faster than aiokafka's.

Which partition a key lands on is part of the pipeline's correctness (contract §4.2): the raw
topic and every session-keyed topic must agree with each other and with Java clients (Kafka
Streams, Connect) that consumers may run. This is the same function as aiokafka's
``DefaultPartitioner`` and Java's ``Utils.murmur2`` (the tests compare it with aiokafka's on
random keys); it only unpacks the key four bytes at a time and masks once per step, because the
pure-Python hash is a noticeable share of ingest's CPU.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka computes it (unsigned 32 bits)."""
    length = len(data)
    h = _SEED ^ length
    m, mask = _M, _MASK
    words = length >> 2
    if words:
        for k in struct.unpack_from(f"<{words}I", data):
            k = (k * m) & mask
            h = ((h * m) ^ (((k ^ (k >> 24)) * m) & mask)) & mask
    tail = length & 3
    if tail:
        base = length & ~3
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` in a topic of ``partitions`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """``key_partition`` for one partition count, remembering the partitions of recent keys.

    Keys are session ids, and a session sends several callbacks (start, each participant's
    join and leave, recordings, end), so most keys were seen a moment ago; hashing one costs
    microseconds of pure Python. The memory is bounded: when ``capacity`` keys are known it
    starts afresh (cheaper per call than keeping an LRU order)."""

    __slots__ = ("_capacity", "_known", "partitions")

    def __init__(self, partitions: int, *, capacity: int = 16_384) -> None:
        self.partitions = partitions
        self._capacity = capacity
        self._known: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        known = self._known
        partition = known.get(key)
        if partition is None:
            if len(known) >= self._capacity:
                known.clear()
            partition = known[key] = (murmur2(key) & 0x7FFFFFFF) % self.partitions
        return partition


def default_partition(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka's ``partitioner`` signature: the key's partition, or a random one without key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
