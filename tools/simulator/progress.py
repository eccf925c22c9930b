"""Live progress on stderr: one line rewritten in place on a terminal, plain lines otherwise.

A log file or CI output gets a line every few seconds instead of hundreds of carriage returns.
"""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from tools.simulator.tally import Tally

TERMINAL_INTERVAL_S = 0.25
PLAIN_INTERVAL_S = 5.0


class Progress:
    def __init__(self, tally: Tally, stream: TextIO, *, interactive: bool | None = None) -> None:
        self._tally = tally
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._began = time.monotonic()
        self._last = (self._began, 0)
        self._width = 0

    def line(self) -> str:
        """``sent 512/871  accepted 508  retries 0  errors 0  201/s``: ``errors`` counts every
        request that was not answered 2xx (retried or not); the rate is over the last interval."""
        now = time.monotonic()
        tally = self._tally
        then, accepted_then = self._last
        rate = (tally.accepted - accepted_then) / (now - then) if now > then else 0.0
        self._last = (now, tally.accepted)
        return (
            f"sent {tally.sent}/{tally.planned}  accepted {tally.accepted}  "
            f"retries {tally.retries}  errors {tally.failed_attempts}  {rate:,.0f}/s  "
            f"[{now - self._began:.1f} s]"
        )

    def show(self) -> None:
        line = self.line()
        if self._interactive:
            # Pad over the previous line's tail: the new one may be shorter.
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End the in-place line so what follows starts on a fresh one."""
        if self._interactive and self._width:
            self._stream.write("\n")
            self._stream.flush()

    async def run(self) -> None:
        """Show progress until cancelled."""
        interval = TERMINAL_INTERVAL_S if self._interactive else PLAIN_INTERVAL_S
        while True:
            await asyncio.sleep(interval)  # the display's refresh period
            self.show()
