"""Sending a plan's deliveries to ingest over HTTP, on schedule, retrying like Vonage does.

A callback counts as delivered only on a 2xx (Meetings routes answer ``204``, Video routes
``200``): ingest answers that only once Kafka holds the record. 5xx (ingest's 503 when Kafka is
slow or away), 408, 429 and connection errors are retried, honouring ``Retry-After`` up to a
bound; any other status is final. Video callbacks to a route with a signature secret are signed
as Vonage signs them, each request afresh.

Callbacks are sent concurrently, so two sent a moment apart can reach ingest in either order.
Deliveries that share an order key (a Video connection's callbacks) are therefore sent one
after the other: each waits for the previous one's final outcome, and so reaches ingest after
it, retries included, as contract §7.4's order guarantee needs.
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from tools.simulator.plan import Delivery, Plan
from tools.simulator.signing import VonageSigner
from tools.simulator.tally import Tally

_RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Target:
    """Where callbacks go: an ingest base URL (routes per kind, as Vonage's three callback URLs
    are configured) or one full callback URL used for every kind."""

    url: str
    token: str | None = None
    """Sent in ``X-Callback-Token`` when ingest requires a shared token."""
    signers: Mapping[str, VonageSigner] = field(default_factory=dict)
    """Per route (``/video/sessions``...): signs the callbacks of that kind."""

    def url_for(self, route: str) -> str:
        parts = urllib.parse.urlsplit(self.url)
        if parts.path not in ("", "/"):
            return self.url
        return urllib.parse.urlunsplit(parts._replace(path=route))

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["X-Callback-Token"] = self.token
        return headers

    def request_headers(self, delivery: Delivery) -> dict[str, str]:
        """What one request adds to ``headers``: its signature, when its route has a signer."""
        signer = self.signers.get(delivery.route)
        return {} if signer is None else {"Authorization": signer.authorization(delivery.body)}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    max_wait_s: float = 10.0
    """Upper bound on any wait, whatever ``Retry-After`` asks for."""
    backoff_s: float = 0.25
    """First wait when the answer has no ``Retry-After``; doubles per attempt."""
    request_timeout_s: float = 10.0

    def wait_s(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        asked = _seconds(retry_after)
        wait = asked if asked is not None else self.backoff_s * 2 ** (attempt - 1)
        return min(wait, self.max_wait_s)


def _seconds(retry_after: str | None) -> float | None:
    # Ingest sends delta-seconds; the HTTP-date form is not worth parsing for a simulator.
    if retry_after is None:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None


class Sender:
    """Sends one plan; ``tally`` is updated as outcomes arrive, for a live display."""

    def __init__(
        self, plan: Plan, target: Target, *, concurrency: int, policy: RetryPolicy
    ) -> None:
        self.plan = plan
        self.tally = Tally(planned=len(plan.deliveries))
        self._target = target
        self._concurrency = concurrency
        self._policy = policy

    async def run(self, stop: asyncio.Event | None = None) -> Tally:
        """Send every delivery at its time, or until ``stop`` is set; in-flight ones finish."""
        stop = stop or asyncio.Event()
        slots = asyncio.Semaphore(self._concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        # The last delivery sent of each order key, which the next one of that key awaits.
        latest: dict[str, asyncio.Task[None]] = {}
        connector = aiohttp.TCPConnector(limit=self._concurrency)
        timeout = aiohttp.ClientTimeout(total=self._policy.request_timeout_s)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self._target.headers
        ) as http:
            began = time.monotonic()
            for delivery in self.plan.deliveries:
                due = began + delivery.send_at_s - time.monotonic()
                if due > 0 and await _stopped_within(stop, due):
                    break
                await slots.acquire()  # backpressure: a slow ingest slows the sender down
                if stop.is_set():
                    slots.release()
                    break
                key = delivery.order_key
                # No deadlock: the first of each key's chain already holds a slot and runs.
                after = latest.get(key) if key is not None else None
                task = asyncio.create_task(self._deliver(http, delivery, stop, after))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: slots.release())
                if key is not None:
                    latest[key] = task
                    task.add_done_callback(functools.partial(_forget, latest, key))
            await asyncio.gather(*in_flight)
        return self.tally

    async def _deliver(
        self,
        http: aiohttp.ClientSession,
        delivery: Delivery,
        stop: asyncio.Event,
        after: asyncio.Task[None] | None,
    ) -> None:
        """Send ``delivery`` once ``after`` (the previous of its order key) has finished."""
        if after is not None:
            await asyncio.wait([after])
            if stop.is_set():
                return
        tally = self.tally
        tally.sent += 1
        url = self._target.url_for(delivery.route)
        attempt = 1
        while True:
            began = time.perf_counter()
            retry_after: str | None = None
            try:
                headers = self._target.request_headers(delivery)
                async with http.post(url, data=delivery.body, headers=headers) as response:
                    await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome, retriable = type(exc).__name__, True
            else:
                if 200 <= status < 300:
                    tally.accepted += 1
                    tally.latencies_s.append(time.perf_counter() - began)
                    tally.statuses[str(status)] += 1
                    return
                outcome, retriable = str(status), status >= 500 or status in _RETRIED_STATUSES
            tally.failed_attempts += 1
            if not retriable:
                tally.refused += 1
                tally.statuses[outcome] += 1
                return
            if attempt >= self._policy.max_attempts or await _stopped_within(
                stop, self._policy.wait_s(attempt, retry_after)
            ):
                tally.gave_up += 1
                tally.statuses[outcome] += 1
                return
            tally.retries += 1
            attempt += 1


def _forget(latest: dict[str, asyncio.Task[None]], key: str, task: asyncio.Task[None]) -> None:
    """Drop a finished delivery from ``latest`` unless a later one of its key took its place."""
    if latest.get(key) is task:
        del latest[key]


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` (the schedule, or a retry's back-off); ``True`` if stopped meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
