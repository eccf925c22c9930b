"""The one module that relies on internals of aiohttp; everything else uses its documented API.

aiohttp documents no hook for a connection's life (accept, bytes arriving, close), for the
answer to a request its parser refuses, nor for choosing the connection class an
``AppRunner`` serves with. Ingest needs all three (read deadlines for headers, the connection
cap, JSON answers to hostile bytes), so this module reaches into aiohttp, and only this module
may. What it relies on, and why no public API does the job:

* ``web.RequestHandler`` (the connection protocol, undocumented) is subclassed, overriding
  ``connection_made``, ``data_received`` and ``connection_lost`` (asyncio's protocol methods):
  the only place a connection's accept, its first byte of a request (headers have no read
  timeout in aiohttp) and its close can be seen. Each is reported to a ``ConnectionObserver``;
  ``BaseRequest.protocol`` (undocumented) leads from a request to its connection.
* ``RequestHandler.handle_error`` is overridden: aiohttp answers a request its parser refuses
  (and a handler's unexpected exception) there, with a text body and a traceback in the log;
  no middleware or signal runs for a request that was never parsed. The override keeps
  aiohttp's quiet (debug) handling of ``BadHttpMethod`` on a connection's first request (TLS
  handshakes and other probes on the plain port), reading ``RequestHandler._request_count``.
* ``RequestHandler.log_exception`` is overridden: errors a client causes while aiohttp drains
  a body (``HttpProcessingError``, ``RequestPayloadError``, ``ConnectionError``) get one line,
  not a traceback.
* ``aiohttp.http_exceptions`` (``HttpProcessingError``, ``BadHttpMethod``,
  ``ContentEncodingError``): the exception types the parser raises; aiohttp exports none of
  them publicly.
* ``AppRunner._make_server`` is overridden to serve the application through that connection
  class: aiohttp has no option for it. The application's own server is still made first (its
  startup hooks run, the router freezes) and supplies the request handler and request factory
  (``Server.request_handler``, ``Server.request_factory``) and the keywords the connections
  are made with (``Server._kwargs``: the runner's keywords, ``debug`` and the application's
  ``handler_args``), so every keyword given to the runner reaches the connections. Keywords a
  connection does not take are refused when the runner is made, not at the first connection.

``tests/contracts/test_aiohttp_internals.py`` checks each of these against the installed aiohttp
and fails naming its version and what moved.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, ContentEncodingError, HttpProcessingError

logger = logging.getLogger(__name__)

AIOHTTP_VERSION = aiohttp.__version__

AppHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""What aiohttp calls with each parsed request (the application's router, or a front to it)."""

CLIENT_CAUSED: tuple[type[BaseException], ...] = (
    HttpProcessingError,
    web.RequestPayloadError,
    ConnectionError,
)
"""Exceptions whose cause is the bytes a client sent (or did not send)."""


class ConnectionObserver(Protocol):
    """Told about one connection's life; made by the runner's ``observe`` factory on accept."""

    def opened(self) -> None:
        """The connection was accepted (the protocol's transport is set)."""

    def request_started(self) -> None:
        """The first bytes arrived while the connection was ``between_requests``, before
        aiohttp parses them; ``between_requests`` is False from here until the observer sets
        it again (once it has answered)."""

    def closed(self) -> None:
        """The connection is gone."""


@dataclass(frozen=True, slots=True)
class Unparseable:
    """A request aiohttp answers without calling the application: its parser refused the
    bytes, or (``status`` 500) the request handler raised past the application."""

    status: int
    """400 for bytes that are not valid HTTP, 415 for a ``Content-Encoding`` aiohttp cannot
    undo, 500 for an unexpected error."""
    reason: str
    """aiohttp's message (client-supplied bytes may be in it: sanitise before echoing)."""
    exception: BaseException | None
    not_http: bool
    """The connection's first bytes were not an HTTP method: a TLS handshake or another probe on
    the plain port. Expected on the public internet; aiohttp logs these at debug only."""


AnswerUnparseable = Callable[[web.BaseRequest, Unparseable], web.StreamResponse]


class ObservedConnection(web.RequestHandler):
    """aiohttp's connection protocol, reporting to a ``ConnectionObserver``."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        observe: Callable[[ObservedConnection], ConnectionObserver],
        answer_unparseable: AnswerUnparseable,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self.between_requests = True
        """No byte of a request since the accept, or since the observer set it (one attribute
        test per chunk of bytes, rather than a call)."""
        self.observer = observe(self)
        self._answer_unparseable = answer_unparseable

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.observer.opened()

    def data_received(self, data: bytes) -> None:
        if self.between_requests and data:
            self.between_requests = False
            self.observer.request_started()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.observer.closed()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, ContentEncodingError):  # a coding aiohttp cannot undo, e.g. br
            status = 415
        unparseable = Unparseable(
            status=status,
            reason=message or (str(exc) if exc is not None else ""),
            exception=exc,
            not_http=self._request_count == 1 and isinstance(exc, BadHttpMethod),
        )
        if request.writer.output_size > 0:  # as aiohttp: a response is already on its way
            raise ConnectionError("a response was already sent; closing the connection")
        response = self._answer_unparseable(request, unparseable)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, CLIENT_CAUSED):
            what = str(args[0]) if args else "error"  # aiohttp's message, without its arguments
            logger.warning("%s: %s", _one_line(what), _one_line(str(exc)))
            return
        super().log_exception(*args, **kw)


def observer_of(request: web.BaseRequest) -> ConnectionObserver | None:
    """The observer of the connection ``request`` arrived on (None: not an observed one)."""
    protocol = request.protocol
    if type(protocol) is ObservedConnection:
        return protocol.observer
    return None


class _ObservingServer(web.Server):
    def __init__(
        self,
        handler: AppHandler,
        *,
        template: web.Server,
        observe: Callable[[ObservedConnection], ConnectionObserver],
        answer_unparseable: AnswerUnparseable,
    ) -> None:
        super().__init__(
            handler,
            request_factory=template.request_factory,
            handler_cancellation=template.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **template._kwargs,
        )
        self._observe = observe
        self._answer_unparseable = answer_unparseable

    def __call__(self) -> ObservedConnection:
        return ObservedConnection(
            self,
            loop=self._loop,
            observe=self._observe,
            answer_unparseable=self._answer_unparseable,
            **self._kwargs,
        )


_RUNNER_KEYWORDS = frozenset({"handle_signals", "shutdown_timeout", "access_log_class"})


def connection_keywords() -> frozenset[str]:
    """The keywords aiohttp's connections take (``max_line_size``, ``keepalive_timeout``...)."""
    parameters = inspect.signature(web.RequestHandler.__init__).parameters
    return frozenset(
        name
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "loop"
    )


class ObservingAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``ObservedConnection``.

    ``front``, when given, receives the application's request handler and returns the one
    aiohttp calls instead (to answer some requests without the router). Every other keyword
    goes to aiohttp as with ``web.AppRunner``; one that neither the runner nor its
    connections take is refused here with ``TypeError``."""

    def __init__(
        self,
        app: web.Application,
        *,
        observe: Callable[[ObservedConnection], ConnectionObserver],
        answer_unparseable: AnswerUnparseable,
        front: Callable[[AppHandler], AppHandler] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _RUNNER_KEYWORDS - connection_keywords())
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown keyword(s) {', '.join(unknown)}; "
                f"aiohttp {AIOHTTP_VERSION}'s runner and connections take "
                f"{', '.join(sorted(_RUNNER_KEYWORDS | connection_keywords()))}"
            )
        super().__init__(app, **kwargs)
        self._observe = observe
        self._answer_unparseable = answer_unparseable
        self._front = front

    async def _make_server(self) -> web.Server:
        template = await super()._make_server()
        handler: AppHandler = template.request_handler
        if self._front is not None:
            handler = self._front(handler)
        return _ObservingServer(
            handler,
            template=template,
            observe=self._observe,
            answer_unparseable=self._answer_unparseable,
        )


def _one_line(text: str, limit: int = 200) -> str:
    shown = " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit] + "..."
