"""Starting a Kafka client that may be cancelled meanwhile, without leaking its connection.

aiokafka (0.14) opens a bootstrap connection in ``AIOKafkaClient.bootstrap`` and closes it only
on its own errors: a start cancelled while that connection asks for metadata leaves it open, and
``stop()`` does not know it. Restores are cancelled (a partition revoked while it restores, a
read-ahead given up at SIGTERM), so a start here is never cancelled half-way: a cancellation
waits for the start to end, closes the client, and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError


async def start_or_close(
    start: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]]
) -> None:
    """``await start()``; if it fails or the caller is cancelled meanwhile, ``await close()``
    once the start has ended, and re-raise."""
    starting = asyncio.ensure_future(start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(KafkaError, OSError, asyncio.CancelledError):
            await starting
        await close()
        raise
    except BaseException:
        await close()
        raise
