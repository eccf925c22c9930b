"""The framework's ceiling: an aiohttp handler that reads the body and answers 204.

``python -m bench.bare_server PORT`` serves it until SIGTERM; same server options as ingest.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def serve(port: int) -> None:
    """Same loop (uvloop), server options and shutdown as ingest, minus the work."""
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/callbacks", accept)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
