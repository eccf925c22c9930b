"""One log line when a Kafka broker stops accepting connections, one when a connection to it
succeeds again (clients reconnect when they next need the broker, so that can be later than its
return).

aiokafka logs every failed connection attempt as an error (``Unable connect to node with id 3``),
several per second per client while a broker is down: hundreds of lines per outage that tell an
operator nothing after the first. Every aiokafka client opens its connections through
``aiokafka.client.create_conn``; ``watch_broker_connections()`` wraps it so each outcome is noted
per broker address, and ``servicekit.logs.KafkaNoiseFilter`` keeps aiokafka's own per-attempt
lines at debug. Installed by ``configure_logging``, so both services get it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("servicekit.kafka")


class BrokerReachability:
    """Which broker addresses refuse connections right now, and since when."""

    def __init__(
        self, log: logging.Logger = logger, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._clock = clock
        self._down: dict[str, tuple[float, int]] = {}
        """address -> (first failure, failed attempts)"""

    def unreachable(self) -> list[str]:
        return sorted(self._down)

    def failed(self, address: str, error: BaseException) -> None:
        if address in self._down:
            since, attempts = self._down[address]
            self._down[address] = (since, attempts + 1)
            return
        self._down[address] = (self._clock(), 1)
        detail = str(error) or type(error).__name__
        self._log.warning(
            "Kafka broker %s unreachable (%s); retrying, further failures are logged at debug",
            address,
            detail,
            extra={"fields": {"broker": address}},
        )

    def connected(self, address: str) -> None:
        entry = self._down.pop(address, None)
        if entry is None:
            return
        since, attempts = entry
        self._log.info(
            "Kafka broker %s connected again, %.1f s after the first failure (%d failed "
            "connection attempts)",
            address,
            self._clock() - since,
            attempts,
            extra={"fields": {"broker": address}},
        )


REACHABILITY = BrokerReachability()
_watched: list[Any] = []
"""The original ``create_conn`` once wrapped (the wrapper is installed once per process)."""


def watch_broker_connections(tracker: BrokerReachability = REACHABILITY) -> None:
    import aiokafka.client as client
    from aiokafka.errors import KafkaError

    if _watched:
        return
    original = client.create_conn
    _watched.append(original)

    async def create_conn(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        address = f"{host}:{port}"
        try:
            connection = await original(host, port, *args, **kwargs)
        except (OSError, TimeoutError, KafkaError) as exc:
            tracker.failed(address, exc)
            raise
        tracker.connected(address)
        return connection

    client.create_conn = create_conn
