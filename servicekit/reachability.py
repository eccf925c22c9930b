"""One log line when a Kafka broker stops accepting connections, one when a connection to it
succeeds again (clients reconnect when they next need the broker, so that can be later than its
return).

aiokafka logs every failed connection attempt as an error (``Unable connect to node with id 3``),
several per second per client while a broker is down: hundreds of lines per outage that tell an
operator nothing after the first. ``watch_broker_connections()`` has each connection attempt's
outcome noted per broker address (through ``servicekit.aiokafka_internals.watch_connections``:
aiokafka reports no connection outcomes publicly), and ``servicekit.logs.KafkaNoiseFilter``
keeps aiokafka's own per-attempt lines at debug. Installed by ``configure_logging``, so both
services get it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from servicekit.aiokafka_internals import watch_connections

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


def watch_broker_connections(tracker: BrokerReachability = REACHABILITY) -> None:
    """Report every aiokafka client's connection outcomes to ``tracker`` (once per process)."""
    watch_connections(tracker.failed, tracker.connected)
