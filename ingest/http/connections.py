"""The cap on open connections, so stalled clients can never exhaust file descriptors
(contract §3.5).

Every connection registers here when accepted. At the cap, the connection that has made no
progress for the longest time (an idle keep-alive connection, or one still sending its headers
or body) is closed to admit the new one; a connection whose request is complete (being
answered) is never closed. Only when every open connection is being answered is the new one
refused with a 503. A legitimate sender therefore gets in even while thousands of stalled
connections are open: each arrival displaces the stalest of them.

Also: the soft file-descriptor limit is raised to the hard one at start-up, and the default cap
is derived from it, leaving room for Kafka's connections, logs and the listening socket.
"""

from __future__ import annotations

import enum
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from ingest.metrics.defs import CONNECTIONS_CLOSED, OPEN_CONNECTIONS

logger = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 128
"""Descriptors kept free of HTTP connections: Kafka, logs, the listener, the event loop."""
DEFAULT_CONNECTION_CEILING = 16_384
"""The derived default never exceeds this: each connection also costs memory."""
REPORT_INTERVAL_S = 10.0
"""Refusals and evictions are logged at most this often (an attacker must not fill the logs)."""


class Phase(enum.IntEnum):
    """Where a connection is in its current request."""

    IDLE = 0
    """No byte of a request yet: just accepted, or keep-alive between requests."""
    HEADERS = 1
    """Part of a request line or headers has arrived."""
    BODY = 2
    """Headers parsed; the body is still arriving."""
    ANSWERING = 3
    """The whole request arrived and is being answered: never evicted."""


class Connection(Protocol):
    phase: Phase
    phase_since: float
    """Loop time of the connection's last move to the end of the guard's order (its accept, or
    the end of its last response)."""
    read_deadline: float | None
    """While set: at least ``phase_since`` plus the read timeout."""

    def evict(self) -> None: ...

    def read_timed_out(self) -> None: ...


def raise_descriptor_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit where allowed; the resulting soft
    limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the file descriptor limit from %d: %s", soft, exc)
    return soft if soft != resource.RLIM_INFINITY else DEFAULT_CONNECTION_CEILING * 2


def default_max_connections(descriptor_limit: int) -> int:
    """Room for HTTP connections under ``descriptor_limit`` open files."""
    room = max(descriptor_limit - RESERVED_DESCRIPTORS, descriptor_limit // 2)
    return max(1, min(room, DEFAULT_CONNECTION_CEILING))


class ConnectionGuard:
    """Open connections in order of their last phase change, oldest first."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._open: OrderedDict[Connection, None] = OrderedDict()
        self._refused = 0
        self._evicted = 0
        self._last_report = float("-inf")

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: Connection) -> bool:
        """Register ``connection``; False when it must be refused (all others are answering)."""
        if len(self._open) >= self.limit:
            victim = self._stalest()
            if victim is None:
                CONNECTIONS_CLOSED.labels(reason="refused").inc()
                self._refused += 1
                self._report()
                return False
            del self._open[victim]
            CONNECTIONS_CLOSED.labels(reason="evicted").inc()
            self._evicted += 1
            self._report()
            victim.evict()
        self._open[connection] = None
        OPEN_CONNECTIONS.set(len(self._open))
        return True

    def progressed(self, connection: Connection) -> None:
        """``connection`` changed phase: it is now the freshest."""
        try:  # once per request: cheaper than a membership test first, or suppress()
            self._open.move_to_end(connection)
        except KeyError:
            return  # a refused connection was never registered

    def release(self, connection: Connection) -> None:
        if connection in self._open:
            del self._open[connection]
            OPEN_CONNECTIONS.set(len(self._open))

    def overdue(self, now: float, read_timeout_s: float) -> list[Connection]:
        """Connections whose headers or body did not arrive by their read deadline, oldest
        first. The order is that of ``phase_since``, so the walk ends at the first connection
        that moved less than a read timeout ago: its deadline and every later one are still
        ahead."""
        horizon = now - read_timeout_s
        late: list[Connection] = []
        for connection in self._open:
            if connection.phase_since > horizon:
                break
            deadline = connection.read_deadline
            if connection.phase <= Phase.BODY and deadline is not None and deadline <= now:
                late.append(connection)
        return late

    def _stalest(self) -> Connection | None:
        for connection in self._open:
            if connection.phase is not Phase.ANSWERING:
                return connection
        return None

    def _report(self) -> None:
        now = self._clock()
        if now - self._last_report < REPORT_INTERVAL_S:
            return
        logger.warning(
            "connection limit of %d reached: %d connections refused, %d idle or slow "
            "connections closed to admit new ones (since the last report)",
            self.limit,
            self._refused,
            self._evicted,
        )
        self._refused = self._evicted = 0
        self._last_report = now
