"""Durable publication of raw callbacks to Kafka, and whether that is possible right now.

One idempotent producer (``acks=all``) per process, shared by all requests so concurrent
callbacks ride in the same batches. ``publish`` returns only once the broker acknowledged the
record, or raises ``PublishError`` within the produce timeout. If Kafka is unreachable at
start-up the service still starts, answers 503 and keeps trying to connect in the background.

Records go out in record batches ingest builds itself (``ingest.kafka.batching``), handed to the
producer with ``send_batch`` (per partition, one batch at a time); ``send`` is never called.
Partitions are chosen by key as Kafka's default partitioner does, with the topic's partition
count taken from every metadata update rather than looked up per callback.

Ingest never causes the raw topic to be created (contract §3.3). aiokafka's producer, asked to
send to a topic missing from its metadata, adds the topic to the names it tracks and asks the
broker for that topic by name, with ``allow_auto_topic_creation`` set: a broker with
``auto.create.topics.enable=true`` would then create it with its default partition count and
break co-partitioning for good. So ``send_batch`` is only called for a topic already in the
producer's metadata (``topic_known``, checked right before each batch is handed over), which is
refreshed with all-topics requests (which create nothing); while the topic is missing,
callbacks get 503 and readiness is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from ingest.kafka.batching import DeliveryTimeout, PartitionBatches, TopicGone
from ingest.metrics.defs import PRODUCE_FAILURES, PRODUCE_SECONDS
from ingest.publication import Headers, PublishError
from ingest.settings import IngestSettings
from servicekit.aiokafka_internals import cluster_metadata, refresh_metadata, topic_known
from servicekit.partitioner import KeyPartitioner, default_partition
from servicekit.record_batches import TopicPartitionsView

logger = logging.getLogger(__name__)

_NOT_CONNECTED = PRODUCE_FAILURES.labels(cause="not_connected")
_TOPIC_MISSING = PRODUCE_FAILURES.labels(cause="topic_missing")
_TIMED_OUT = PRODUCE_FAILURES.labels(cause="timeout")
_OBSERVE_PRODUCE_SECONDS = PRODUCE_SECONDS.observe

_RECONNECT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_METADATA_BACKOFF_S = (0.05, 0.1, 0.2, 0.5)

# Errors after which an idempotent producer never recovers by itself: e.g. batches that
# expired while the broker was down leave a gap in its sequence numbers, and every later batch
# is refused as out of order. The Java client resets its epoch; here a fresh producer (with a
# new producer id) replaces the broken one.
_PRODUCER_FATAL = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


class RawPublisher:
    """The production ``Publisher`` (``ingest.publication``). Owns the producer's lifecycle:
    ``start()``/``stop()``, also as ``async with``."""

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._batches: PartitionBatches | None = None
        self._partitioner: KeyPartitioner | None = None
        """Keys to partitions of the raw topic as the producer's metadata has it; None while
        the topic is missing."""
        self._unlisten: Callable[[], None] = lambda: None
        """Removes the current producer's metadata listener."""
        self._deliverable = False
        self._topic_missing = False
        self._connector: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._stopped = False
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """True while the producer is connected and the last delivery or probe succeeded."""
        return self._producer is not None and self._deliverable

    @property
    def topic_missing(self) -> bool:
        """True while Kafka is reachable but the raw topic does not exist."""
        return self._producer is not None and self._topic_missing

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")
        # Give a reachable broker the chance to be connected before the first request.
        # (asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.produce_timeout_s):
                await asyncio.shield(self._connector)

    async def stop(self) -> None:
        """Deliver what is buffered (bounded by the produce timeout), then close. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._deliverable = False
        for task in (self._connector, self._prober):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        producer, self._producer = self._producer, None
        batches, self._batches = self._batches, None
        if producer is not None:
            try:
                async with asyncio.timeout(self._settings.produce_timeout_s):
                    if batches is not None:
                        await batches.close()
                    await producer.flush()
            except (TimeoutError, KafkaError):
                logger.warning("Kafka producer could not flush before stopping")
            await producer.stop()

    async def __aenter__(self) -> RawPublisher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def publish(
        self, body: bytes, key: bytes | None, headers: Headers, timestamp_ms: int
    ) -> None:
        producer, batches = self._producer, self._batches
        if producer is None or batches is None:
            _NOT_CONNECTED.inc()
            raise PublishError("not_connected")
        partitioner = self._partitioner
        if partitioner is None:
            partitioner = await self._await_topic(producer, self._settings.raw_topic)
            if partitioner is None:
                raise self._topic_missing_error()
        if key is None:
            cluster = cluster_metadata(producer)
            topic = self._settings.raw_topic
            partition = default_partition(
                None,
                sorted(cluster.partitions_for_topic(topic) or ()),
                sorted(cluster.available_partitions_for_topic(topic) or ()),
            )
        else:
            partition = partitioner(key)
        began = time.perf_counter()
        try:
            await batches.add(partition, key, body, headers, timestamp_ms)
        except DeliveryTimeout:
            self._deliverable = False
            _TIMED_OUT.inc()
            raise PublishError("timeout") from None
        except TopicGone:
            raise self._topic_missing_error() from None
        except KafkaError as exc:
            self._deliverable = False
            cause = type(exc).__name__
            PRODUCE_FAILURES.labels(cause=cause).inc()
            logger.warning("Kafka refused a callback record: %s", exc)
            if isinstance(exc, _PRODUCER_FATAL):
                self._replace_producer(producer)
            raise PublishError(cause) from exc
        _OBSERVE_PRODUCE_SECONDS(time.perf_counter() - began)
        self._deliverable = True

    def _topic_missing_error(self) -> PublishError:
        self._deliverable = False
        _TOPIC_MISSING.inc()
        return PublishError(
            "topic_missing",
            f"the topic {self._settings.raw_topic} does not exist; it is created by the topics "
            "command, never by ingest",
        )

    async def _await_topic(self, producer: AIOKafkaProducer, topic: str) -> KeyPartitioner | None:
        """The partitioner of ``topic`` once it appears in the producer's metadata within
        the produce timeout (``None`` if it does not), as
        aiokafka would wait for it, but with all-topics refreshes (concurrent requests share
        each one). A topic created a moment ago takes a little while to reach every broker's
        metadata."""
        delays = itertools.chain(_METADATA_BACKOFF_S, itertools.repeat(_METADATA_BACKOFF_S[-1]))
        with contextlib.suppress(TimeoutError, KafkaError, OSError):
            async with asyncio.timeout(self._settings.produce_timeout_s):
                for delay in delays:
                    await refresh_metadata(producer)
                    if self._partitioner is not None:
                        return self._partitioner
                    await asyncio.sleep(delay)
        return self._partitioner

    # -- background work -------------------------------------------------------------------

    def _replace_producer(self, broken: AIOKafkaProducer) -> None:
        """Retire ``broken`` and connect a fresh producer; requests get 503 meanwhile."""
        current = self._producer
        if current is None or current is not broken or self._stopped:
            return  # another request already started the replacement
        logger.warning("replacing the Kafka producer after a fatal producer error")
        self._producer = None
        self._batches = None
        self._partitioner = None
        self._unlisten()  # the retired producer's metadata concerns nobody
        if self._prober is not None:
            self._prober.cancel()
        retiring = asyncio.create_task(current.stop(), name="kafka-retire")
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")

    async def _connect(self) -> None:
        attempt = 0
        while not self._stopped:
            producer = AIOKafkaProducer(
                **self._settings.kafka.producer_options(),
                client_id="meetings-ingest",
                enable_idempotence=True,  # implies acks=all
                acks="all",
                linger_ms=self._settings.linger_ms,
                request_timeout_ms=max(int(self._settings.produce_timeout_s * 1000), 1000),
            )
            try:
                await producer.start()
            except BaseException as exc:
                await producer.stop()  # a half-started producer holds connections and tasks
                if not isinstance(exc, KafkaError):
                    raise
                delay = _RECONNECT_BACKOFF_S[min(attempt, len(_RECONNECT_BACKOFF_S) - 1)]
                logger.warning("Kafka unreachable (%s); retrying in %.1f s", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._use(producer)
            logger.info("Kafka producer connected to %s", self._settings.kafka.bootstrap_servers)
            # The bootstrap metadata names no topic: learn the topics before the first request.
            self._deliverable = await self._probe()
            self._prober = asyncio.create_task(self._probe_forever(), name="kafka-probe")
            return

    def _use(self, producer: AIOKafkaProducer) -> None:
        """Send through ``producer`` from now on."""
        cluster = cluster_metadata(producer)
        topic = self._settings.raw_topic

        def learn_partitions(metadata: TopicPartitionsView) -> None:
            if self._producer is producer:
                found = metadata.partitions_for_topic(topic)
                if not found:
                    self._partitioner = None
                elif self._partitioner is None or self._partitioner.partitions != len(found):
                    self._partitioner = KeyPartitioner(len(found))

        cluster.add_listener(learn_partitions)
        self._unlisten = lambda: cluster.remove_listener(learn_partitions)
        self._producer = producer
        learn_partitions(cluster)
        self._batches = PartitionBatches(
            producer,
            topic,
            timeout_s=self._settings.produce_timeout_s,
            # Checked right before each batch is handed over (see the module docstring).
            topic_exists=lambda: topic_known(producer, topic),
        )

    async def _probe_forever(self) -> None:
        """Refresh readiness from cluster metadata, so it recovers without traffic."""
        while not self._stopped:
            self._deliverable = await self._probe()
            await asyncio.sleep(self._settings.readiness_interval_s)

    async def _probe(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        # An all-topics refresh of the producer's own metadata: the client tracks no topic by
        # name, so the request lists none and creates none.
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                updated = await refresh_metadata(producer)
        except (TimeoutError, KafkaError, OSError):
            return False
        if not updated:
            return False
        missing = not topic_known(producer, self._settings.raw_topic)
        if missing != self._topic_missing:
            if missing:
                logger.warning(
                    "topic %s does not exist: callbacks get 503 until it is created",
                    self._settings.raw_topic,
                )
            else:
                logger.info("topic %s exists", self._settings.raw_topic)
        self._topic_missing = missing
        return not missing
