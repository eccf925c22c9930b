"""Outputs go out as aiokafka record batches per partition, placed as ``producer.send`` would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from hypothesis import given
from hypothesis import strategies as st

from processor.runtime.clients import MAX_REQUEST_BYTES, RecordBatch
from processor.runtime.partition import Output
from processor.runtime.produce import BatchSender


class RecordingBatch(BatchBuilder):  # type: ignore[misc]
    """aiokafka's own builder (it decides when a batch is full), remembering what it took."""

    def __init__(self, batch_size: int) -> None:
        super().__init__(batch_size, 0)
        self.values: list[bytes | None] = []

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        metadata: object | None = super().append(
            timestamp=timestamp, key=key, value=value, headers=headers
        )
        if metadata is not None:
            self.values.append(value)
        return metadata


class BatchRecorder:
    """The batch half of a producer: what was handed over, in order, to which partition."""

    def __init__(self, partitions: int, batch_size: int = 16_384) -> None:
        self.partitions = partitions
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, list[bytes | None]]] = []
        self.lookups = 0

    def create_batch(self) -> RecordBatch:
        return RecordingBatch(self.batch_size)

    async def send_batch(self, batch: RecordBatch, topic: str, *, partition: int) -> Any:
        assert isinstance(batch, RecordingBatch)
        self.sent.append((topic, partition, batch.values))
        delivered: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def partitions_for(self, topic: str) -> set[int]:
        self.lookups += 1
        return set(range(self.partitions))


async def send(
    recorder: BatchRecorder, outputs: list[Output], sender: BatchSender | None = None
) -> int:
    deliveries: list[asyncio.Future[object]] = []
    await (sender or BatchSender()).send_all(recorder, outputs, deliveries)  # type: ignore[arg-type]
    return len(deliveries)


@given(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=16),
)
def test_keys_land_on_the_partitions_aiokafka_would_choose(keys: list[bytes], count: int) -> None:
    recorder = BatchRecorder(count)
    outputs = [Output("t", key, key) for key in keys]
    asyncio.run(send(recorder, outputs))
    placed = {value: partition for _, partition, values in recorder.sent for value in values}
    partitions = list(range(count))
    for key in keys:
        assert placed[key] == DefaultPartitioner()(key, partitions, partitions)


async def test_each_partition_keeps_its_order_across_full_batches() -> None:
    recorder = BatchRecorder(3, batch_size=300)
    outputs = [Output("t", f"k{n % 5}".encode(), f"{n:04}".encode() * 20) for n in range(60)]
    deliveries = await send(recorder, outputs)
    assert deliveries == len(recorder.sent) > 3  # full batches were handed over on the way
    for partition in range(3):
        expected = [
            o.value for o in outputs if DefaultPartitioner()(o.key, [0, 1, 2], []) == partition
        ]
        got = [v for _, p, values in recorder.sent if p == partition for v in values]
        assert got == expected


async def test_explicit_partitions_topics_and_tombstones_are_kept_apart() -> None:
    recorder = BatchRecorder(4)
    outputs = [
        Output("state", b"s", b"1", partition=2),
        Output("events", b"s", b"2"),
        Output("state", b"s", None, partition=3),
        Output("state", b"s", b"4", partition=2),
    ]
    await send(recorder, outputs)
    assert ("state", 2, [b"1", b"4"]) in recorder.sent
    assert ("state", 3, [None]) in recorder.sent
    assert [topic for topic, _, _ in recorder.sent].count("events") == 1
    assert recorder.lookups == 1  # only the keyed topic's partitions were looked up


async def test_partitions_are_looked_up_again_when_a_topic_grows() -> None:
    sender = BatchSender()
    recorder = BatchRecorder(1)
    await send(recorder, [Output("t", b"session-7", b"v")], sender)
    recorder.partitions = 8
    await send(recorder, [Output("t", b"session-7", b"v")], sender)
    assert [partition for _, partition, _ in recorder.sent] == [
        0,
        DefaultPartitioner()(b"session-7", list(range(8)), []),
    ]


@pytest.mark.parametrize(
    "output",
    [
        Output("t", b"k", b"x" * MAX_REQUEST_BYTES),
        Output("t", b"k", b"x" * (MAX_REQUEST_BYTES - 100), headers=(("h", b"y" * 200),)),
    ],
    ids=["value", "headers"],
)
async def test_a_record_the_producer_would_refuse_fails_with_aiokafkas_error(
    output: Output,
) -> None:
    recorder = BatchRecorder(2)
    with pytest.raises(MessageSizeTooLargeError):
        await send(recorder, [output])
    assert recorder.sent == []


async def test_a_record_just_under_the_limit_goes_out() -> None:
    recorder = BatchRecorder(2, batch_size=MAX_REQUEST_BYTES)
    await send(recorder, [Output("t", b"k", b"x" * (MAX_REQUEST_BYTES - 200))])
    assert len(recorder.sent) == 1
