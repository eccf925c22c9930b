"""The archive status callbacks of one Video session (contract §7), as Vonage sends them.

An archive starts some minutes in (``started``, listing the streams it records), may pause and
resume (Vonage has no ``resumed`` status: resuming is a second ``started``), stops, and then is
``uploaded`` to the customer's own bucket or ``available`` from Vonage's cloud with a URL; a
few fail instead. Vonage warns that for small archives ``uploaded`` may come before
``stopped``: ``upload_before_stop`` plays that. An archive expires from Vonage's cloud 72 hours
after it was made, longer than any simulation lasts, so ``expired`` is not played.
"""

from __future__ import annotations

import random

from tools.simulator.meetings import Body, Timeline
from tools.simulator.video_writer import SessionWriter, uuid_of

ARCHIVE_NAMES = ("Weekly sync", "Interview", "Lecture", "")


def archive_callbacks(
    writer: SessionWriter, *, duration_ms: int, upload_before_stop: bool
) -> Timeline:
    """One archive's callbacks, within the instance's ``duration_ms`` but for the last (the
    file being ready takes a while); each status a separate callback."""
    rng = writer.rng
    archive = _Archive(writer, rng, duration_ms)
    out = [archive.status(archive.start_ms, "started", streams=True)]
    if archive.pauses:
        out.append(archive.status(archive.paused_ms, "paused"))
        out.append(archive.status(archive.resumed_ms, "started", streams=True))
    if archive.fails:
        return [*out, archive.status(archive.stop_ms, "failed", reason="failure")]
    stopped = archive.status(archive.stop_ms, "stopped", final=True)
    if not archive.uploads:
        url = f"https://example.invalid/archives/{archive.archive_id}/archive.mp4"
        ready = archive.status(archive.ready_ms, "available", final=True, size=True, url=url)
        return [*out, stopped, ready]
    if upload_before_stop:
        early_ms = archive.stop_ms - archive.early_ms
        uploaded = archive.status(early_ms, "uploaded", final=True, size=True)
        # Listed first too: on a tie of send times the plan keeps the listed order.
        return [*out, uploaded, stopped]
    uploaded = archive.status(archive.ready_ms, "uploaded", final=True, size=True)
    return [*out, stopped, uploaded]


class _Archive:
    """One archive's draws and the body fields its every callback repeats."""

    def __init__(self, writer: SessionWriter, rng: random.Random, duration_ms: int) -> None:
        self._writer = writer
        self.archive_id = uuid_of(rng)
        self.start_ms = rng.randint(5_000, max(duration_ms // 3, 10_000))
        longest = max(duration_ms - self.start_ms - 10_000, 60_000)
        self.stop_ms = min(self.start_ms + rng.randint(30_000, longest), duration_ms - 5_000)
        self.pauses = rng.random() < 0.25 and self.stop_ms - self.start_ms > 60_000
        earliest = self.start_ms + 10_000
        self.paused_ms = rng.randint(earliest, max(self.stop_ms - 40_000, earliest))
        self.resumed_ms = self.paused_ms + rng.randint(5_000, 30_000)
        self.fails = rng.random() < 0.05
        self.uploads = rng.random() < 0.45
        """To the customer's bucket (``uploaded``), else ``available`` from Vonage's cloud."""
        self.early_ms = rng.randint(500, 2_000)
        """How long before ``stopped`` an early ``uploaded`` comes (less than a latency's
        spread, so its callback always leaves first)."""
        self.ready_ms = self.stop_ms + rng.randint(20_000, 90_000)
        self._reason = "maximum duration exceeded" if rng.random() < 0.05 else "user initiated"
        # Sized by meeting time: a compressed clock must not make every file tiny.
        self._size = (self.stop_ms - self.start_ms) // 1000 * rng.randint(60_000, 250_000)
        composed = rng.random() < 0.8
        self._fixed: Body = {
            "id": self.archive_id,
            "event": "archive",
            "sessionId": writer.session_id,
            **writer.tenant.archive_fields(),
            "name": rng.choice(ARCHIVE_NAMES),
            "createdAt": writer.at(self.start_ms),
            "outputMode": "composed" if composed else "individual",
            "streamMode": "auto",
            "hasAudio": True,
            "hasVideo": True,
        }
        if composed:
            self._fixed["resolution"] = "1280x720"

    def status(
        self,
        offset_ms: int,
        status: str,
        *,
        streams: bool = False,
        final: bool = False,
        size: bool = False,
        reason: str | None = None,
        url: str | None = None,
    ) -> tuple[int, Body]:
        """The callback of ``status`` at ``offset_ms``: ``final`` ones carry the duration and
        the stop reason, ``size`` ones the file's size, ``streams`` ones what is recorded."""
        writer = self._writer
        seconds = round((writer.at(self.stop_ms) - writer.at(self.start_ms)) / 1000)
        body: Body = {
            **self._fixed,
            "status": status,
            "updatedAt": writer.at(offset_ms),
            "duration": seconds if final else 0,  # Vonage: 0 while in progress
            "size": self._size if size else 0,  # Vonage: 0 until the file is made
            "reason": reason if reason is not None else self._reason if final else "",
            "url": url,  # only on available, else null
        }
        if streams:
            body["streams"] = [
                {"streamId": span.stream_id, "hasAudio": True, "hasVideo": span.has_video}
                for span in writer.streams
                if span.start_ms <= offset_ms < span.end_ms
            ]
        return writer.sent(offset_ms, body)
