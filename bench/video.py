"""Realistic raw callbacks of many concurrent Vonage Video API sessions, as ingest writes them.

The Video counterpart of ``bench.meetings``, with the same number of sessions over the same hour:
each session comes from ``tools.simulator.video`` (shared with ``meetings-simulate --source
video``): ``sessionCreated``; 2-12 people connecting with token data ``{"userId":..,"name":..}``,
most publishing a camera, some audio only, now and then one sharing their screen; about one in
five dropping off the network and coming back under a new connection id; ``sessionDestroyed``.
Every session is archived (``started``, for some ``paused`` and ``started`` again, ``stopped``,
then ``uploaded`` or ``available``), so the archive path carries weight; one session id in ten is
used a second time (a new instance). About 1% of callbacks are retried by Vonage.

Records are keyed by ``sessionId`` and carry the route Vonage posted them to
(``/video/sessions`` or ``/video/archives``), from which the processor picks its decoder.
"""

from __future__ import annotations

import random

import orjson

from bench.meetings import MINUTE_MS, Body, RawCallback, in_receive_order
from tools.simulator.meetings import Timeline
from tools.simulator.video import route_of, video_session, video_session_id_of
from tools.simulator.video_writer import tenant_of

__all__ = ["PARTICIPANT_KEY", "raw_video_callbacks"]

PARTICIPANT_KEY = "data.userId"
"""The processor's ``VIDEO_PARTICIPANT_KEY`` for this traffic: a person, not a connection."""
TENANTS = 8
PEOPLE = (2, 6)
"""People per session instance. A Video person sends about 4.8 callbacks (a connection and a
stream, each opened and closed, and reconnects), a Meetings participant 1.8: with the 2-12 of
``bench.meetings`` a session would bring nearly three times the callbacks; with these, and the
archive, 1.6 times."""
REUSE_SHARE = 0.1
UPLOAD_BEFORE_STOP_SHARE = 0.1
"""Archives whose ``uploaded`` arrives before their ``stopped`` (Vonage: small archives)."""


def raw_video_callbacks(sessions: int, *, now_ms: int, seed: int = 11) -> list[RawCallback]:
    """Every session's callbacks interleaved in receive order, as they reach the raw topic."""
    rng = random.Random(seed)
    tenants = [tenant_of(rng) for _ in range(TENANTS)]
    timeline: Timeline = []
    for _ in range(sessions):
        tenant = rng.choice(tenants)
        session_id = video_session_id_of(rng, tenant)
        t0 = now_ms - 55 * MINUTE_MS + rng.randint(0, 10 * MINUTE_MS)
        # A reused id's two instances and the gap between them fit the same hour as the rest.
        if rng.random() < REUSE_SHARE:
            first, gap, second = rng.randint(5, 15), rng.randint(2, 10), rng.randint(5, 15)
            uses = [(t0, first), (t0 + (first + gap) * MINUTE_MS, second)]
        else:
            uses = [(t0, rng.randint(5, 35))]
        for start, minutes in uses:
            timeline += video_session(
                rng,
                session_id=session_id,
                tenant=tenant,
                t0=start,
                duration_ms=minutes * MINUTE_MS,
                people=rng.randint(*PEOPLE),
                archive=True,
                upload_before_stop=rng.random() < UPLOAD_BEFORE_STOP_SHARE,
            )
    # The sort is stable: a connection's callbacks, sent in order, stay in order (as contract §7.4
    # requires of Vonage's).
    return in_receive_order(timeline, rng, now_ms, _raw)


def _raw(body: Body, received_at_ms: int) -> RawCallback:
    key = body["sessionId"]
    assert isinstance(key, str)
    return RawCallback(
        body=orjson.dumps(body),
        key=key.encode(),
        received_at_ms=received_at_ms,
        route=route_of(body).encode(),
    )
