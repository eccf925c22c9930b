"""The server production runs (``IngestRunner``): aiohttp's, plus what contract §3.5 asks of
hostile input.

* Requests aiohttp cannot parse (garbage request line, bad or duplicate ``Content-Length``,
  ``Content-Length`` with ``Transfer-Encoding``, NUL in a header, too many or too long header
  lines, non-UTF-8 bytes in the target) get a JSON ``{"error", "detail"}`` body and one log line
  without a traceback, instead of aiohttp's text body and error-level traceback. Bytes that are
  not HTTP at all on a connection's first request (a TLS handshake on the plain port) are logged
  at debug only, as aiohttp does.
* A read timeout: from a connection's accept, or the first byte of a later request, the
  headers and the body must arrive within ``read_timeout_s``. Late headers get a ``408`` and the
  connection closes; a late body ends the handler's ``asyncio.timeout`` (``reading_body``),
  and the handler answers ``408``. One sweep per process finds both, rather than a timer per
  request: the per-request cost is a clock read and a few attribute writes. The sweep takes its
  time from ``clock`` (the event loop's by default), so tests move time instead of sleeping.
* Every connection is registered with the ``ConnectionGuard`` (the connection cap).

What aiohttp offers no public hook for (a connection's accept, first byte and close; the answer
to a request the parser refused; the connection class a runner serves with) is reached through
``servicekit.aiohttp_internals`` and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import hdrs, web

from ingest.http.connections import ConnectionGuard, Phase
from ingest.http.responses import error_code, printable, raw_error_response
from ingest.metrics.defs import CONNECTIONS_CLOSED, REQUESTS
from servicekit.aiohttp_internals import (
    AppHandler,
    ObservedConnection,
    ObservingAppRunner,
    Unparseable,
    observer_of,
)

logger = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT_S = 75.0
"""Idle keep-alive connections close after this (nginx's default); at the connection cap the
stalest idle one closes sooner."""
UNPARSED_ROUTE = "unparsed"
"""The ``route`` label of requests that could not be parsed far enough to be routed."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIRECT_POST_ROUTES = web.AppKey("direct_post_routes", dict[str, Handler])
"""Set by the application: the paths whose POSTs go straight to their handler (see
``IngestRunner``); the router has the same handler for each."""
UNROUTABLE: web.AppKey[Handler] = web.AppKey("unroutable")
"""Set by the application: the handler of request targets the router cannot take at all
(``OPTIONS *``, ``CONNECT host:port``), the same one its catch-all route has."""

Clock = Callable[[], float]

# Module constants: cheaper than an enum attribute lookup on the per-request path.
_IDLE, _HEADERS, _BODY, _ANSWERING = Phase.IDLE, Phase.HEADERS, Phase.BODY, Phase.ANSWERING


class IngestConnection:
    """One connection's place in the read deadlines and the connection cap."""

    __slots__ = (
        "_body_timeout",
        "_clock",
        "_guard",
        "_read_timeout_s",
        "_retry_after_s",
        "close_after_response",
        "connection",
        "phase",
        "phase_since",
        "read_deadline",
    )

    def __init__(
        self,
        connection: ObservedConnection,
        *,
        guard: ConnectionGuard,
        clock: Clock,
        read_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self.connection = connection
        self._guard = guard
        self._clock = clock
        self._read_timeout_s = read_timeout_s
        self._retry_after_s = retry_after_s
        self.phase = _IDLE
        self.phase_since = clock()
        """When the connection was accepted or last finished a request (its place in the
        guard's order)."""
        self.read_deadline: float | None = self.phase_since + read_timeout_s
        """Clock time by which the current request (headers and body) must have arrived; a
        connection that never sends a request is a slow one too."""
        self._body_timeout: asyncio.Timeout | None = None
        self.close_after_response = False
        """Close once the answer is written, without reading the rest of the body."""

    # -- reported by the connection (servicekit.aiohttp_internals) --------------------------

    def opened(self) -> None:
        if not self._guard.admit(self):
            self._answer_and_close(
                503,
                "the server is at its connection limit; retry later",
                (("Retry-After", str(self._retry_after_s)),),
            )

    def request_started(self) -> None:
        self.phase = _HEADERS
        if self.read_deadline is None:  # keep-alive: the clock starts at this first byte
            self.read_deadline = self._clock() + self._read_timeout_s
        # else the first request: its clock dates from the accept. Either way the place in the
        # guard's order stays (accept or last request): deadline >= phase_since + timeout,
        # which is all the sweep needs, and no per-request reordering.

    def closed(self) -> None:
        self._guard.release(self)

    # -- called by the guard and the sweep --------------------------------------------------

    def evict(self) -> None:
        """Closed by the connection guard to admit a new connection."""
        if self.phase is _IDLE:
            self.connection.force_close()  # an idle keep-alive connection may close any time
        else:
            self._answer_and_close(
                503,
                "the server is at its connection limit and this request was too slow",
                (("Retry-After", str(self._retry_after_s)),),
            )

    def read_timed_out(self) -> None:
        """Called by the sweep once ``read_deadline`` passed with the request incomplete."""
        if self.phase is _IDLE:  # accepted, and not one byte within the read timeout
            CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
            self.connection.force_close()
        elif self.phase is _HEADERS:
            CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
            self._answer_and_close(
                408, f"the request headers did not arrive within {self._read_timeout_s:g} s"
            )
        elif self.phase is _BODY and self._body_timeout is not None:
            # The handler's read ends with TimeoutError now; it answers 408 itself.
            self._body_timeout.reschedule(asyncio.get_running_loop().time())
            self._body_timeout = None

    # -- request progress (the front and the handler) ---------------------------------------

    def reading_body(self, timeout: asyncio.Timeout) -> None:
        self._body_timeout = timeout
        if self.read_deadline is None:  # a deadline for every body read
            self.read_deadline = self._clock() + self._read_timeout_s

    def body_received(self) -> None:
        self.phase = _ANSWERING
        self._body_timeout = None

    def answered(self) -> bool:
        """The handler returned its response: the connection is between requests again.
        True when it must close once that response is written."""
        self.read_deadline = None
        self._body_timeout = None
        self.phase = _IDLE
        self.connection.between_requests = True
        self.phase_since = self._clock()
        self._guard.progressed(self)
        return self.close_after_response

    def _answer_and_close(
        self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        transport = self.connection.transport
        if transport is not None and not transport.is_closing():
            transport.write(raw_error_response(status, detail, headers=headers))
        self.connection.force_close()


def _connection(request: web.BaseRequest) -> IngestConnection | None:
    observer = observer_of(request)
    return observer if type(observer) is IngestConnection else None


class IngestEdge:
    """What ``IngestRunner`` adds to aiohttp, kept off the runner (an aiohttp object): one
    ``IngestConnection`` per connection, the read-timeout sweep, and the front that sends
    callbacks straight to their handler."""

    def __init__(
        self,
        app: web.Application,
        *,
        guard: ConnectionGuard,
        read_timeout_s: float,
        retry_after_s: int,
        clock: Clock | None,
    ) -> None:
        self.app = app
        self.guard = guard
        self.read_timeout_s = read_timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.sweeper: asyncio.TimerHandle | None = None
        # Late requests are noticed within a quarter of the timeout (at most a second) of it.
        self.sweep_interval_s = min(read_timeout_s / 4, 1.0)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.clock is None:
            self.clock = loop.time
        self.sweeper = loop.call_later(self.sweep_interval_s, self.sweep_periodically)

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None

    def sweep(self) -> int:
        """Time out every connection whose request is late by ``clock``; how many were."""
        assert self.clock is not None, "sweep() before start()"
        late = self.guard.overdue(self.clock(), self.read_timeout_s)
        for connection in late:
            connection.read_timed_out()
        return len(late)

    def sweep_periodically(self) -> None:
        self.sweep()
        self.sweeper = asyncio.get_running_loop().call_later(
            self.sweep_interval_s, self.sweep_periodically
        )

    def observe(self, connection: ObservedConnection) -> IngestConnection:
        if self.clock is None:  # a connection before setup() finished: the loop's time
            self.clock = asyncio.get_running_loop().time
        return IngestConnection(
            connection,
            guard=self.guard,
            clock=self.clock,
            read_timeout_s=self.read_timeout_s,
            retry_after_s=self.retry_after_s,
        )

    def front(self, app_handler: AppHandler) -> AppHandler:
        routes: dict[str, Handler] | None = self.app.get(DIRECT_POST_ROUTES)
        direct = {} if routes is None else routes.copy()
        unroutable = self.app.get(UNROUTABLE)
        post = hdrs.METH_POST
        expect = hdrs.EXPECT

        if not direct and unroutable is None:
            return app_handler  # nothing to take off the router

        def front(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
            # A plain function handing back the handler's coroutine: one coroutine less per
            # request (aiohttp awaits whatever the request handler returns).
            target = request.raw_path
            # The request factory is the application's: requests are web.Request.
            if request.method == post:
                if "?" in target:
                    target = target.partition("?")[0]
                handler = direct.get(target)
                if handler is not None and expect not in request.headers:
                    return handler(cast(web.Request, request))
            if target[:1] != "/" and unroutable is not None and not request.path.startswith("/"):
                return unroutable(cast(web.Request, request))
            return app_handler(request)

        return front


class IngestRunner(ObservingAppRunner):
    """``web.AppRunner`` serving the application as production does: connections with read
    deadlines and the connection cap, JSON answers to unparseable requests, and the callback
    routes' POSTs going straight to their handler.

    Callbacks skip the router: it would find the same handler, but its resolve, match info and
    handler chain cost several microseconds per request, and a few fixed paths need one dict
    lookup. Everything else (other paths and methods, ``Expect: 100-continue``) goes through
    the application's router.

    Keywords other than ingest's go to aiohttp (``max_line_size``, ``max_field_size``,
    ``keepalive_timeout``, ``shutdown_timeout``...); one aiohttp does not take is a
    ``TypeError`` here. ``access_log`` is refused: ingest writes its own access log."""

    def __init__(
        self,
        app: web.Application,
        *,
        guard: ConnectionGuard,
        read_timeout_s: float,
        retry_after_s: int,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        if "access_log" in kwargs:
            raise TypeError(
                "IngestRunner writes ingest's own access log (INGEST_ACCESS_LOG); "
                "aiohttp's access_log cannot be set"
            )
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT_S)
        kwargs.setdefault("lingering_time", min(read_timeout_s, 10.0))
        edge = IngestEdge(
            app,
            guard=guard,
            read_timeout_s=read_timeout_s,
            retry_after_s=retry_after_s,
            clock=clock,
        )
        super().__init__(
            app,
            observe=edge.observe,
            answer_unparseable=answer_unparseable,
            front=edge.front,
            access_log=None,
            **kwargs,
        )
        self.edge = edge

    @property
    def guard(self) -> ConnectionGuard:
        return self.edge.guard

    async def setup(self) -> None:
        self.edge.start()
        await super().setup()

    async def cleanup(self) -> None:
        self.edge.stop()
        await super().cleanup()

    def sweep(self) -> int:
        """Time out every connection whose request is late by ``clock``; how many were."""
        return self.edge.sweep()


def answer_unparseable(request: web.BaseRequest, failure: Unparseable) -> web.StreamResponse:
    """A JSON answer and one line of log (never a traceback: clients choose these bytes)."""
    status = failure.status
    reason = printable(failure.reason or error_code(status))
    connection = _connection(request)
    if connection is not None:
        connection.phase = _ANSWERING  # the sweep must not answer it too
    if status >= 500:
        name = type(failure.exception).__name__
        logger.error("could not answer a request: %s: %s", name, reason)
    elif failure.not_http:  # a TLS handshake or other probe on the plain port
        logger.debug("not HTTP from %s: %s", printable(str(request.remote)), reason)
    else:
        logger.warning("unparseable request from %s: %s", printable(str(request.remote)), reason)
    REQUESTS.labels(route=UNPARSED_ROUTE, status=str(status)).inc()
    if status >= 500:
        detail = "an unexpected error; the request was not stored"
    elif status == 415:
        detail = f"{reason}; send identity, gzip or deflate"
    elif status == 400:
        detail = f"the request is not valid HTTP: {reason}"
    else:
        detail = reason
    code = "unsupported_encoding" if status == 415 else error_code(status)
    return web.json_response({"error": code, "detail": detail}, status=status)


def reading_body(request: web.Request, timeout: asyncio.Timeout, read_timeout_s: float) -> None:
    """The handler is about to read the body under ``timeout`` (made with no deadline): the
    sweep ends it once the request's read deadline passes."""
    connection = _connection(request)
    if connection is not None:
        connection.reading_body(timeout)
    else:  # served by another runner (no sweep): a timer of its own
        timeout.reschedule(asyncio.get_running_loop().time() + read_timeout_s)


def body_received(request: web.Request) -> None:
    connection = _connection(request)
    if connection is not None:
        connection.body_received()


async def send_and_close(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Write ``response`` now and close the connection, without lingering to read the rest of
    a body (after a read timeout: the client is too slow to wait for)."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass
    connection = _connection(request)
    if connection is not None:
        connection.connection.force_close()


def close_after_response(request: web.Request) -> None:
    connection = _connection(request)
    if connection is not None:
        connection.close_after_response = True
