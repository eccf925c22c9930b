"""ingest's HTTP connection protocol: aiohttp's, plus what SPEC §3 asks of hostile input.

* Requests aiohttp cannot parse (garbage request line, bad or duplicate ``Content-Length``,
  ``Content-Length`` with ``Transfer-Encoding``, NUL in a header, too many or too long header
  lines, non-UTF-8 bytes in the target) get a JSON ``{"error", "detail"}`` body and one log line
  without a traceback, instead of aiohttp's text body and error-level traceback.
* A read timeout: from a connection's accept, or the first byte of a later request, the
  headers and the body must arrive within ``read_timeout_s``. Headers that do not make it get a
  ``408`` and the connection closes; the callback handler answers a late body with ``408``
  itself (it reads by ``read_deadline``). One sweep per process finds late headers, rather than a
  timer per request: the per-request cost is a clock read and two attribute writes.
* Every connection is registered with the ``ConnectionGuard`` (the connection cap).

``IngestRunner`` is ``web.AppRunner`` serving the application through this protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestPayloadError

from ingest.connections import ConnectionGuard, Phase
from ingest.metrics import CONNECTIONS_CLOSED, REQUESTS
from ingest.responses import error_code, printable, raw_error_response

logger = logging.getLogger(__name__)

ClientCaused = (HttpProcessingError, RequestPayloadError, ConnectionError)
"""Exceptions whose cause is the bytes a client sent (or did not send)."""
KEEPALIVE_TIMEOUT_S = 75.0
"""Idle keep-alive connections close after this (nginx's default); at the connection cap the
stalest idle one closes sooner."""
UNPARSED_ROUTE = "unparsed"
"""The ``route`` label of requests that could not be parsed far enough to be routed."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIRECT_POST_ROUTES = web.AppKey("direct_post_routes", dict[str, Handler])
"""Set by the application: the paths whose POSTs go straight to their handler (see
``IngestServer``); the router has the same handler for each."""

# Module constants: cheaper than an enum attribute lookup on the per-request path.
_IDLE, _HEADERS, _BODY, _ANSWERING = Phase.IDLE, Phase.HEADERS, Phase.BODY, Phase.ANSWERING


class IngestProtocol(web.RequestHandler):
    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        guard: ConnectionGuard,
        read_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        super().__init__(
            manager,
            loop=loop,
            access_log=None,  # type: ignore[arg-type]  # aiohttp's documented "no access log"
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
            lingering_time=min(read_timeout_s, 10.0),
        )
        self._guard = guard
        self._read_timeout_s = read_timeout_s
        self._retry_after_s = retry_after_s
        self.phase = Phase.IDLE
        self.phase_since = loop.time()
        """When the connection was accepted or last finished a response (its place in the
        guard's order)."""
        self.read_deadline: float | None = None
        """Loop time by which the current request (headers and body) must have arrived."""
        self._close_after_response = False

    # -- connection lifecycle --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A connection that never sends a request is a slow one too.
        self.read_deadline = self.phase_since + self._read_timeout_s
        if not self._guard.admit(self):
            self._answer_and_close(
                503,
                "the server is at its connection limit; retry later",
                (("Retry-After", str(self._retry_after_s)),),
            )

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase is _IDLE and data:
            self.phase = _HEADERS
            if self.read_deadline is None:  # keep-alive: the clock starts at this first byte
                self.read_deadline = self._loop.time() + self._read_timeout_s
            # else the first request: its clock dates from the accept. Either way the place in
            # the guard's order stays (accept or last response): deadline >= phase_since + timeout,
            # which is all the sweep needs, and no per-request reordering.
        super().data_received(data)

    def evict(self) -> None:
        """Closed by the connection guard to admit a new connection."""
        if self.phase is Phase.IDLE:
            self.force_close()  # an idle keep-alive connection may close at any time
        else:
            self._answer_and_close(
                503,
                "the server is at its connection limit and this request was too slow",
                (("Retry-After", str(self._retry_after_s)),),
            )

    # -- request progress (called by IngestServer and the handler) -------------------------

    def body_received(self) -> None:
        self.phase = _ANSWERING

    def close_after_response(self) -> None:
        """Close as soon as the answer is written, without lingering to read the rest of the
        body (after a read timeout: the client is too slow to wait for)."""
        self._close_after_response = True

    def log_access(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        """aiohttp calls this once a response is written (or the peer vanished while writing
        it): the cheapest hook there is for "answered". aiohttp's own version, which only
        writes its access log, is not called: none is configured (ingest logs access itself)."""
        self.read_deadline = None
        self.phase = _IDLE
        self.phase_since = self._loop.time()
        self._guard.progressed(self)
        if self._close_after_response:
            self.force_close()

    # -- unparseable requests ---------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A JSON answer and one line of log (never a traceback: clients choose these bytes)."""
        if isinstance(exc, ContentEncodingError):  # a coding aiohttp cannot undo, e.g. br
            status = 415
        reason = printable(message or (str(exc) if exc else "") or error_code(status))
        if status >= 500:
            logger.error("could not answer a request: %s: %s", type(exc).__name__, reason)
        else:
            logger.warning(
                "unparseable request from %s: %s", printable(str(request.remote)), reason
            )
        REQUESTS.labels(route=UNPARSED_ROUTE, status=str(status)).inc()
        if request.writer.output_size > 0:  # as aiohttp: a response is already on its way
            raise ConnectionError("a response was already sent; closing the connection")
        if status >= 500:
            detail = "an unexpected error; the request was not stored"
        elif status == 415:
            detail = f"{reason}; send identity, gzip or deflate"
        elif status == 400:
            detail = f"the request is not valid HTTP: {reason}"
        else:
            detail = reason
        code = "unsupported_encoding" if status == 415 else error_code(status)
        response = web.json_response({"error": code, "detail": detail}, status=status)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own error log: one line for what a client can cause (a body that breaks
        while aiohttp drains it, a vanished peer), a traceback only for a genuine bug."""
        exc = kw.get("exc_info")
        if isinstance(exc, ClientCaused):
            what = str(args[0]) if args else "error"  # aiohttp's message, without its arguments
            logger.warning("%s: %s", printable(what), printable(str(exc)))
            return
        super().log_exception(*args, **kw)

    # -- internals --------------------------------------------------------------------------

    def read_timed_out(self) -> None:
        """Called by the sweep once ``read_deadline`` passed with the headers incomplete."""
        if self.phase is Phase.IDLE:  # accepted, and not one byte within the read timeout
            CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
            self.force_close()
        elif self.phase is Phase.HEADERS:
            CONNECTIONS_CLOSED.labels(reason="read_timeout").inc()
            self._answer_and_close(
                408, f"the request headers did not arrive within {self._read_timeout_s:g} s"
            )

    def _answer_and_close(
        self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(raw_error_response(status, detail, headers=headers))
        self.force_close()


class IngestServer(web.Server):
    """aiohttp's connection manager, making ``IngestProtocol`` connections and sweeping them
    for late headers.

    Callbacks go straight to their route's handler: the application's router would find the
    same one, but its resolve, match info and handler chain cost several microseconds per
    request, and four fixed paths need one dict lookup. Everything else (other paths and
    methods, ``Expect: 100-continue``) goes through the application as usual."""

    def __init__(
        self,
        template: web.Server,
        make_protocol: Callable[[web.Server], IngestProtocol],
        *,
        guard: ConnectionGuard,
        read_timeout_s: float,
        direct_post_routes: Mapping[str, Handler],
    ) -> None:
        super().__init__(
            self._dispatch if direct_post_routes else template.request_handler,
            request_factory=self._track_request,
            handler_cancellation=template.handler_cancellation,
        )
        self._app_handler = template.request_handler
        self._direct_post_routes = dict(direct_post_routes)
        self._app_request_factory = template.request_factory
        self._make_protocol = make_protocol
        self._guard = guard
        self._read_timeout_s = read_timeout_s
        # Late headers are noticed within a quarter of the timeout (at most a second) of it.
        self._sweep_interval_s = min(read_timeout_s / 4, 1.0)
        self._sweeper = self._loop.call_later(self._sweep_interval_s, self._sweep)

    def __call__(self) -> IngestProtocol:
        return self._make_protocol(self)

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (aiohttp's)
        self._sweeper.cancel()
        await super().shutdown(timeout)

    def _sweep(self) -> None:
        for connection in self._guard.overdue(self._loop.time(), self._read_timeout_s):
            connection.read_timed_out()
        self._sweeper = self._loop.call_later(self._sweep_interval_s, self._sweep)

    def _dispatch(self, request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # A plain function handing back the handler's coroutine: one coroutine less per
        # request (aiohttp awaits whatever the request handler returns).
        if request.method == hdrs.METH_POST:
            handler = self._direct_post_routes.get(request.rel_url.path_safe)
            if handler is not None and hdrs.EXPECT not in request.headers:
                # The request factory is the application's: requests are web.Request.
                return handler(cast(web.Request, request))
        return self._app_handler(request)

    def _track_request(
        self, message: Any, payload: StreamReader, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        if type(protocol) is IngestProtocol:
            # Headers parsed; not moved in the guard's order: a slow body stays as stale as
            # its request.
            protocol.phase = _ANSWERING if payload.is_eof() else _BODY
        return self._app_request_factory(message, payload, protocol, writer, task)


class IngestRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are ``IngestProtocol`` ones."""

    def __init__(
        self,
        app: web.Application,
        *,
        guard: ConnectionGuard,
        read_timeout_s: float,
        retry_after_s: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard
        self._read_timeout_s = read_timeout_s
        self._retry_after_s = retry_after_s

    async def _make_server(self) -> web.Server:
        # The application's own server (startup hooks run, router frozen) supplies the request
        # handler and factory; only the protocol differs.
        template = await super()._make_server()
        loop = asyncio.get_running_loop()
        direct = self._app.get(DIRECT_POST_ROUTES)
        return IngestServer(
            template,
            lambda manager: IngestProtocol(
                manager,
                loop=loop,
                guard=self._guard,
                read_timeout_s=self._read_timeout_s,
                retry_after_s=self._retry_after_s,
            ),
            guard=self._guard,
            read_timeout_s=self._read_timeout_s,
            direct_post_routes=direct or {},
        )


def read_deadline(request: web.Request, read_timeout_s: float) -> float:
    """Loop time by which the body must have arrived."""
    protocol = request.protocol
    if isinstance(protocol, IngestProtocol) and protocol.read_deadline is not None:
        return protocol.read_deadline
    return asyncio.get_running_loop().time() + read_timeout_s


def body_received(request: web.Request) -> None:
    protocol = request.protocol
    if isinstance(protocol, IngestProtocol):
        protocol.body_received()


def close_after_response(request: web.Request) -> None:
    protocol = request.protocol
    if isinstance(protocol, IngestProtocol):
        protocol.close_after_response()
