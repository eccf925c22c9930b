"""What ``servicekit.aiohttp_internals`` relies on in aiohttp, checked against the installed
release. A failure names the aiohttp version and what moved: fix that one module (and this
contract), nothing else.

Broker-free and in-process: a plain application served by ``ObservingAppRunner``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from servicekit import aiohttp_internals
from servicekit.aiohttp_internals import (
    AIOHTTP_VERSION,
    ObservedConnection,
    ObservingAppRunner,
    Unparseable,
    observer_of,
)
from tests.ingest.raw_http import RawResponse, exchange, request_bytes

TLS_CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(32) + b"\x00\x00\x02\x13\x01"


def moved(what: str) -> str:
    return f"aiohttp {AIOHTTP_VERSION}: {what}; servicekit/aiohttp_internals.py must follow"


@dataclass
class Recorder:
    """Observes every connection and every unparseable request."""

    events: list[tuple[int, str]] = field(default_factory=list)
    unparseable: list[Unparseable] = field(default_factory=list)
    connections: list[ObservedConnection] = field(default_factory=list)

    def observe(self, connection: ObservedConnection) -> Observer:
        self.connections.append(connection)
        return Observer(self, len(self.connections))

    def answer(self, request: web.BaseRequest, failure: Unparseable) -> web.StreamResponse:
        self.unparseable.append(failure)
        return web.json_response({"error": "ours"}, status=failure.status)


@dataclass
class Observer:
    recorder: Recorder
    number: int

    def opened(self) -> None:
        self.recorder.events.append((self.number, "opened"))

    def request_started(self) -> None:
        self.recorder.events.append((self.number, "data"))

    def closed(self) -> None:
        self.recorder.events.append((self.number, "closed"))


async def echo(request: web.Request) -> web.Response:
    await request.read()
    observer = observer_of(request)
    return web.json_response({"observed": isinstance(observer, Observer)})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@asynccontextmanager
async def serving(
    recorder: Recorder,
    front: Callable[[aiohttp_internals.AppHandler], aiohttp_internals.AppHandler] | None = None,
    **kwargs: Any,
) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/boom", boom)
    runner = ObservingAppRunner(
        app, observe=recorder.observe, answer_unparseable=recorder.answer, front=front, **kwargs
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def answer(port: int, data: bytes) -> RawResponse:
    response = await exchange(port, data, within=5)
    assert response is not None, moved("the connection closed without an answer")
    return response


def test_the_classes_and_names_relied_on_exist() -> None:
    handler_keywords = aiohttp_internals.connection_keywords()
    for keyword in ("keepalive_timeout", "lingering_time", "access_log", "max_line_size"):
        assert keyword in handler_keywords, moved(f"RequestHandler no longer takes {keyword}")
    for method in ("connection_made", "data_received", "connection_lost", "log_exception"):
        assert callable(getattr(web.RequestHandler, method, None)), moved(
            f"RequestHandler.{method} is gone"
        )
    parameters = list(inspect.signature(web.RequestHandler.handle_error).parameters)
    assert parameters == ["self", "request", "status", "exc", "message"], moved(
        f"RequestHandler.handle_error's parameters are now {parameters}"
    )
    assert inspect.iscoroutinefunction(getattr(web.AppRunner, "_make_server", None)), moved(
        "AppRunner._make_server (the hook that makes the runner's server) is gone"
    )


async def test_a_server_keeps_what_the_runner_copies() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    server = web.Server(handler, max_line_size=123)
    for name in ("request_handler", "request_factory", "handler_cancellation", "_kwargs"):
        assert hasattr(server, name), moved(f"web.Server has no {name}")
    assert server._kwargs == {"max_line_size": 123}, moved(
        "web.Server no longer keeps the connections' keywords in _kwargs"
    )


async def test_a_connections_life_is_observed_in_order() -> None:
    recorder = Recorder()
    async with serving(recorder) as port:
        response = await answer(port, request_bytes(b"{}", target=b"/echo"))
        assert response.json() == {"observed": True}, moved(
            "request.protocol is not the connection the request arrived on"
        )
        async with asyncio.timeout(5):
            while (1, "closed") not in recorder.events:  # noqa: ASYNC110 (no event to await)
                await asyncio.sleep(0.005)  # the close is reported after the peer's
    kinds = [kind for _, kind in recorder.events]
    order = moved(f"a connection's accept, bytes and close are reported as {kinds}")
    assert kinds[0] == "opened", order
    assert kinds[-1] == "closed", order
    assert "data" in kinds, order
    assert kinds.count("opened") == kinds.count("closed") == 1, moved(
        f"a connection's accept or close is reported more than once: {kinds}"
    )


async def test_a_parser_error_reaches_our_answer_with_the_exception_type_we_expect() -> None:
    recorder = Recorder()
    async with serving(recorder) as port:
        bad = await answer(port, b"POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        probe = await answer(port, TLS_CLIENT_HELLO)
    assert (bad.status, bad.json()) == (400, {"error": "ours"}), moved(
        f"a request the parser refuses is answered {bad.status} {bad.body!r}, not by our hook"
    )
    assert probe.status == 400, moved("a TLS handshake on the plain port is not a 400")
    [invalid, handshake] = recorder.unparseable
    assert isinstance(invalid.exception, HttpProcessingError), moved(
        f"the parser raised {type(invalid.exception).__name__}, not an HttpProcessingError"
    )
    assert not invalid.not_http
    assert handshake.not_http, moved(
        f"a TLS handshake raised {type(handshake.exception).__name__}, not BadHttpMethod "
        "on the connection's first request (RequestHandler._request_count)"
    )


async def test_a_handlers_unexpected_exception_reaches_our_answer_as_500() -> None:
    recorder = Recorder()
    async with serving(recorder) as port:
        response = await answer(port, request_bytes(b"", target=b"/boom", method=b"GET"))
    assert response.status == 500, moved(f"a handler's exception is answered {response.status}")
    [failure] = recorder.unparseable
    assert failure.status == 500
    assert isinstance(failure.exception, RuntimeError), moved(
        "a handler's exception does not reach handle_error"
    )


async def test_keywords_passed_to_the_runner_reach_the_connections() -> None:
    long_line = request_bytes(b"{}", target=b"/echo?" + b"q" * 200)
    long_field = request_bytes(b"{}", [(b"X-Long", b"v" * 200)], target=b"/echo")
    recorder = Recorder()
    async with serving(recorder) as port:  # aiohttp's defaults: both are fine
        assert (await answer(port, long_line)).status == 200
        assert (await answer(port, long_field)).status == 200
    async with serving(Recorder(), max_line_size=100, max_field_size=100) as port:
        assert (await answer(port, long_line)).status == 400, moved(
            "max_line_size given to the runner did not reach the connections"
        )
        assert (await answer(port, long_field)).status == 400, moved(
            "max_field_size given to the runner did not reach the connections"
        )


def test_keywords_nothing_takes_are_refused_when_the_runner_is_made() -> None:
    with pytest.raises(TypeError, match="max_line_sise"):
        ObservingAppRunner(
            web.Application(),
            observe=Recorder().observe,
            answer_unparseable=Recorder().answer,
            max_line_sise=100,
        )


async def test_the_front_sees_every_request_before_the_router() -> None:
    seen: list[str] = []

    def front(app_handler: aiohttp_internals.AppHandler) -> aiohttp_internals.AppHandler:
        def handle(request: web.BaseRequest) -> Any:
            seen.append(request.path)
            return app_handler(request)

        return handle

    async with serving(Recorder(), front=front) as port:
        assert (await answer(port, request_bytes(b"{}", target=b"/echo"))).status == 200
        assert (
            await answer(port, request_bytes(b"", target=b"/none", method=b"GET"))
        ).status == 404
    assert seen == ["/echo", "/none"], moved(f"the server's request handler saw {seen}")


def test_only_the_internals_module_imports_aiohttps_private_modules() -> None:
    """The guard on the one-module rule: elsewhere in ``ingest/`` and ``servicekit/`` only
    ``aiohttp``, ``aiohttp.web``, ``aiohttp.hdrs`` and ``aiohttp.abc`` are imported."""
    root = Path(__file__).resolve().parents[2]
    allowed = {"aiohttp", "aiohttp.web", "aiohttp.hdrs", "aiohttp.abc"}
    internals = root / "servicekit" / "aiohttp_internals.py"
    wrong = []
    for path in sorted([*(root / "ingest").rglob("*.py"), *(root / "servicekit").rglob("*.py")]):
        if path == internals:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "aiohttp":  # submodules only, not names like ClientSession
                    names += [
                        f"aiohttp.{alias.name}"
                        for alias in node.names
                        if importlib.util.find_spec(f"aiohttp.{alias.name}") is not None
                    ]
            wrong += [
                f"{path.relative_to(root)}: {name}"
                for name in names
                if name.split(".")[0] == "aiohttp" and name not in allowed
            ]
    assert wrong == []
