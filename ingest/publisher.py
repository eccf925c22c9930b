"""Durable publication of raw callbacks to Kafka, and whether that is possible right now.

One idempotent producer (``acks=all``) per process, shared by all requests so concurrent
callbacks ride in the same batches. ``publish`` returns only once the broker acknowledged the
record, or raises ``PublishError`` within the produce timeout. If Kafka is unreachable at
start-up the service still starts, answers 503 and keeps trying to connect in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from ingest.metrics import PRODUCE_FAILURES, PRODUCE_SECONDS
from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]

_RECONNECT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)

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


class PublishError(Exception):
    """Kafka did not acknowledge a record in time; the client should retry later (503)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class RawPublisher:
    """Owns the producer's lifecycle: ``start()``/``stop()``, also as ``async with``."""

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._deliverable = False
        self._connector: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._stopped = False
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """True while the producer is connected and the last delivery or probe succeeded."""
        return self._producer is not None and self._deliverable

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
        if producer is not None:
            try:
                async with asyncio.timeout(self._settings.produce_timeout_s):
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
        producer = self._producer
        if producer is None:
            PRODUCE_FAILURES.labels(cause="not_connected").inc()
            raise PublishError("not_connected")
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                delivery = await producer.send(
                    self._settings.raw_topic,
                    value=body,
                    key=key,
                    headers=list(headers),
                    timestamp_ms=timestamp_ms,
                )
                # Shielded: the record stays queued even if this request gives up waiting.
                await asyncio.shield(delivery)
        except TimeoutError:
            self._deliverable = False
            PRODUCE_FAILURES.labels(cause="timeout").inc()
            raise PublishError("timeout") from None
        except KafkaError as exc:
            self._deliverable = False
            cause = type(exc).__name__
            PRODUCE_FAILURES.labels(cause=cause).inc()
            logger.warning("Kafka refused a callback record: %s", exc)
            if isinstance(exc, _PRODUCER_FATAL):
                self._replace_producer(producer)
            raise PublishError(cause) from exc
        PRODUCE_SECONDS.observe(time.perf_counter() - began)
        self._deliverable = True

    # -- background work -------------------------------------------------------------------

    def _replace_producer(self, broken: AIOKafkaProducer) -> None:
        """Retire ``broken`` and connect a fresh producer; requests get 503 meanwhile."""
        current = self._producer
        if current is None or current is not broken or self._stopped:
            return  # another request already started the replacement
        logger.warning("replacing the Kafka producer after a fatal producer error")
        self._producer = None
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
                **self._settings.kafka.client_options(),
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
            self._producer = producer
            logger.info("Kafka producer connected to %s", self._settings.kafka.bootstrap_servers)
            self._prober = asyncio.create_task(self._probe_forever(), name="kafka-probe")
            return

    async def _probe_forever(self) -> None:
        """Refresh readiness from cluster metadata, so it recovers without traffic."""
        while not self._stopped:
            self._deliverable = await self._probe()
            await asyncio.sleep(self._settings.readiness_interval_s)

    async def _probe(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                metadata = await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError):
            return False
        if self._settings.raw_topic not in metadata.topics():
            logger.warning("topic %s does not exist", self._settings.raw_topic)
            return False
        return True
