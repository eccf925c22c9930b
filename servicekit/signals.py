"""SIGINT and SIGTERM as an ``asyncio.Event``: how the services and the one-shot commands (a
replay, a tail, the simulator) are asked to stop cleanly."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (call it from the running event loop).

    Handlers can only be installed from the main thread: run in another one (as the tests run
    the commands' ``main``), nothing is installed and only ``stop`` itself stops the work."""
    loop = asyncio.get_running_loop()
    handled = (
        (signal.SIGINT, signal.SIGTERM)
        if threading.current_thread() is threading.main_thread()
        else ()
    )
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
