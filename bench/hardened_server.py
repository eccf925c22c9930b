"""``bench.bare_server``'s handler (plus ingest's body-read bookkeeping) served through
ingest's connection protocol (read deadline, connection cap, JSON parser errors), to measure
what that protocol costs per request.

``python -m bench.hardened_server PORT`` serves it until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from aiohttp import web

from ingest.http.connections import ConnectionGuard, Phase
from ingest.http.protocol import IngestConnection, IngestRunner, body_received, reading_body
from servicekit.aiohttp_internals import ObservedConnection


async def accept_hardened(request: web.Request) -> web.Response:
    """As ingest's handler: the connection told when the handler begins and ends (as
    ``ingest.http.exchange.observed`` does), the body read without a timer when it came with
    the headers."""
    protocol = request.protocol  # as ingest.http.exchange.observed does
    connection = protocol.observer if type(protocol) is ObservedConnection else None
    if type(connection) is IngestConnection:
        connection.phase = Phase.ANSWERING if request.content.is_eof() else Phase.BODY
    try:
        if not request.content.is_eof():
            async with asyncio.timeout(None) as timeout:
                reading_body(request, timeout, 10.0)
                await request.read()
            body_received(request)
        else:
            await request.read()
        return web.Response(status=204)
    finally:
        if type(connection) is IngestConnection:
            connection.answered()


async def serve(port: int) -> None:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/callbacks", accept_hardened)
    runner = IngestRunner(
        app,
        guard=ConnectionGuard(4096),
        read_timeout_s=10.0,
        retry_after_s=5,
        handle_signals=False,
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
