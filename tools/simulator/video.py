"""The callbacks of one realistic Vonage Video API session (contract §7), as Vonage would send them.

Session monitoring (``/video/sessions``): ``sessionCreated`` as the first person connects;
people connecting with token data that is a JSON object (``{"userId":"u-17","name":"Ada"}``),
most publishing a camera, some audio only (no ``videoType``), now and then one sharing their
screen until ``mediaStopped``; some dropping off the network (``networkDisconnected``) and
coming back a few seconds later on a new connection; most leaving before the end, a few sent
away by a moderator; ``sessionDestroyed`` once the last has gone, or a platform failure or a
server rotation (announced by a ``sessionNotification``) ending it for everyone. Archive status
(``/video/archives``) comes from ``tools.simulator.video_archive``. Everything in Vonage's
camelCase wire format, times in epoch milliseconds, every field as ``schemas.video`` reads it.

Like ``tools.simulator.meetings``, the output is a plain ``(send time, body)`` timeline. A
connection's callbacks (its streams' included) are sent in the order they happened, whatever
the latencies: contract §7.4 relies on that order and on no other (``order_key``).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from tools.simulator.meetings import MINUTE_MS, Body, Timeline
from tools.simulator.video_archive import archive_callbacks
from tools.simulator.video_writer import SessionWriter, StreamSpan, VideoTenant, uuid_of

NAMES = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Tim")

REUSE_SHARE = 0.1
"""Session ids used again after they ended (a second ``sessionCreated``: a new instance)."""
_REUSE_GAP_MS = (2 * MINUTE_MS, 10 * MINUTE_MS)
"""Longer than the first use's last archive callbacks take to come."""
_DROP_SHARE = 0.2
"""People whose network drops once; most come back on a new connection."""
_RECONNECT_MS = (2_000, 10_000)

Publishing = Literal["camera", "audio", "none"]
EndKind = Literal["normal", "failure", "rotation"]
_END_REASONS: dict[EndKind, str | None] = {
    "normal": None,
    "failure": "forceDisconnected",
    "rotation": "serverRotation",
}
"""``sessionDestroyed``'s ``reason`` for each way a session ends."""


@dataclass(frozen=True, slots=True)
class InstanceDraw:
    """One use of a session id; expanding it is deterministic given ``seed``."""

    gap_ms: int
    """Meeting time since the previous use ended (0 for the first)."""
    duration_ms: int
    people: int
    archive: bool
    upload_before_stop: bool
    seed: int


@dataclass(frozen=True, slots=True)
class VideoSessionDraw:
    """One session id's random draws (what ``meetings-simulate --source video`` plans)."""

    tenant: VideoTenant
    instances: tuple[InstanceDraw, ...]

    def timeline(self, session_id: str, t0: int, time_scale: float) -> Timeline:
        out: Timeline = []
        offset_ms = 0
        for instance in self.instances:
            offset_ms += instance.gap_ms
            out += video_session(
                random.Random(instance.seed),
                session_id=session_id,
                tenant=self.tenant,
                t0=t0 + round(offset_ms / time_scale),
                duration_ms=instance.duration_ms,
                people=instance.people,
                archive=instance.archive,
                upload_before_stop=instance.upload_before_stop,
                time_scale=time_scale,
            )
            offset_ms += instance.duration_ms
        return out


def draw_video_session(
    rng: random.Random, *, tenant: VideoTenant, upload_before_stop_rate: float
) -> VideoSessionDraw:
    instances = [_draw_instance(rng, 0, upload_before_stop_rate)]
    if rng.random() < REUSE_SHARE:
        gap_ms = rng.randint(*_REUSE_GAP_MS)
        instances.append(_draw_instance(rng, gap_ms, upload_before_stop_rate))
    return VideoSessionDraw(tenant=tenant, instances=tuple(instances))


def _draw_instance(rng: random.Random, gap_ms: int, upload_before_stop_rate: float) -> InstanceDraw:
    return InstanceDraw(
        gap_ms=gap_ms,
        duration_ms=rng.randint(5, 40) * MINUTE_MS,
        people=rng.randint(2, 12),
        archive=rng.random() < 0.3,
        # Drawn whatever the rate, so that changing the rate changes nothing else.
        upload_before_stop=rng.random() < upload_before_stop_rate,
        seed=rng.getrandbits(64),
    )


def route_of(body: Body) -> str:
    """The URL Vonage posts a callback to: archive status or session monitoring."""
    return VIDEO_ARCHIVES_ROUTE if body.get("event") == "archive" else VIDEO_SESSIONS_ROUTE


def order_key(body: Body) -> str | None:
    """The connection whose callbacks must keep their order (its own and its streams'), or
    ``None`` for a callback no order is promised for."""
    holder = body.get("stream", body)
    connection = holder.get("connection") if isinstance(holder, dict) else None
    if isinstance(connection, dict) and isinstance(connection.get("id"), str):
        return str(connection["id"])
    return None


def video_session(
    rng: random.Random,
    *,
    session_id: str,
    tenant: VideoTenant,
    t0: int,
    duration_ms: int,
    people: int,
    archive: bool,
    upload_before_stop: bool = False,
    ended: bool = True,
    time_scale: float = 1.0,
) -> Timeline:
    """``(send time, body)`` of one use of a Video session starting at epoch ms ``t0``;
    unsorted, each connection's callbacks in their order.

    ``duration_ms`` and every delay are meeting time, compressed by ``time_scale`` as in
    ``tools.simulator.meetings.meeting``; the draws do not depend on it. ``upload_before_stop``
    delivers an ``uploaded`` archive's callback before its ``stopped``, as Vonage warns happens
    with small archives. ``ended=False`` cuts the session at ``t0 + duration_ms``.
    """
    writer = SessionWriter(rng, session_id=session_id, tenant=tenant, t0=t0, time_scale=time_scale)
    end: EndKind = rng.choices(("normal", "failure", "rotation"), weights=(85, 5, 10))[0]
    writer.out.append(writer.sent(0, writer.monitoring(0, "sessionCreated")))
    users = rng.sample(range(1, 1000), people)
    sharer = rng.randrange(people) if rng.random() < 0.4 else None
    last_left = 0
    for number, user in enumerate(users):
        person = _person(rng, user)
        connections = _connections(rng, first=number == 0, duration_ms=duration_ms, end=end)
        for leg, connection in enumerate(connections):
            _connection_lane(writer, person, connection, shares=number == sharer and leg == 0)
        last_left = max(last_left, connections[-1].end_ms)
    if end == "rotation":
        notified = rng.randint(duration_ms // 4, duration_ms // 2)
        notice = writer.monitoring(notified, "sessionNotification", reason="serverRotation")
        writer.out.append(writer.sent(notified, notice))
    if archive:
        writer.out += archive_callbacks(
            writer, duration_ms=duration_ms, upload_before_stop=upload_before_stop
        )
    destroyed = last_left + rng.randint(1_000, 5_000)
    ending = writer.monitoring(destroyed, "sessionDestroyed", reason=_END_REASONS[end])
    writer.out.append(writer.sent(destroyed, ending))
    if not ended:
        return [(sent, body) for sent, body in writer.out if sent < writer.at(duration_ms)]
    return writer.out


@dataclass(frozen=True, slots=True)
class _Person:
    data: str
    """Token data: a JSON object string with ``userId`` and (mostly) ``name``."""
    name: str | None
    publishing: Publishing


@dataclass(frozen=True, slots=True)
class _Connection:
    start_ms: int
    end_ms: int
    reason: str
    """``connectionDestroyed``'s."""


def _person(rng: random.Random, user: int) -> _Person:
    name = rng.choice(NAMES) if rng.random() < 0.9 else None
    token = {"userId": f"u-{user}"} if name is None else {"userId": f"u-{user}", "name": name}
    publishing: Publishing = rng.choices(("camera", "audio", "none"), weights=(85, 10, 5))[0]
    return _Person(data=orjson.dumps(token).decode(), name=name, publishing=publishing)


def _connections(
    rng: random.Random, *, first: bool, duration_ms: int, end: EndKind
) -> list[_Connection]:
    """A person's connections: one, or two when the network drops and they come back."""
    # The first person opens the session and stays to its end, as a host does.
    joined = 0 if first else rng.randint(1_000, max(duration_ms // 2, 2_000))
    leaves = not first and rng.random() < 0.8
    stays_ms = rng.randint(1_000, max(duration_ms - joined - 1_000, 2_000))
    kicked = rng.random() < 0.05
    hang_up_ms = rng.randint(0, 20_000)
    if leaves:
        left = min(joined + stays_ms, duration_ms - 1_000)
        reason = "forceDisconnected" if kicked else "clientDisconnected"
    elif end == "normal":  # everyone hangs up as the meeting ends
        left, reason = duration_ms - hang_up_ms, "clientDisconnected"
    else:  # a failure or a rotation disconnects whoever is still there
        left, reason = duration_ms, "forceDisconnected"
    left = max(left, joined + 500)
    drop = rng.random() < _DROP_SHARE and left - joined > 20_000
    dropped = rng.randint(joined + 5_000, left - 10_000) if drop else 0
    back = dropped + rng.randint(*_RECONNECT_MS)
    if not drop:
        return [_Connection(joined, left, reason)]
    lost = _Connection(joined, dropped, "networkDisconnected")
    if back >= left - 1_000:  # gone for good
        return [lost]
    return [lost, _Connection(back, left, reason)]


class _Wire(Protocol):
    def __call__(self, *, repeat_data: bool) -> Body:
        """The connection object of a callback."""
        ...


def _connection_lane(
    writer: SessionWriter, person: _Person, connection: _Connection, *, shares: bool
) -> None:
    """One connection's callbacks: created, its streams, destroyed."""
    rng = writer.rng
    start, end, reason = connection.start_ms, connection.end_ms, connection.reason
    connection_id = uuid_of(rng)
    created_at = writer.at(start)

    def wire(*, repeat_data: bool) -> Body:
        # Vonage need not repeat the token data after connectionCreated: often it is "".
        data = person.data if repeat_data else ""
        return {"id": connection_id, "createdAt": created_at, "data": data}

    opened = writer.monitoring(start, "connectionCreated", connection=wire(repeat_data=True))
    events = [(start, opened)]
    published = start + rng.randint(500, 4_000)
    unpublished = rng.random() < 0.03
    if person.publishing != "none" and published < end - 100:
        video_type = "camera" if person.publishing == "camera" else None
        stop, why = end, reason
        if unpublished and end - published > 2_000:  # a moderator stops the camera
            stop, why = rng.randint(published + 1_000, end - 500), "forceUnpublished"
        events += _stream(writer, person, wire, video_type, (published, stop), why)
    if shares and end - start > 10_000:
        shared = start + rng.randint((end - start) // 10, (end - start) // 2)
        stopped = shared + rng.randint(1, 10) * MINUTE_MS
        stop, why = (stopped, "mediaStopped") if stopped < end - 500 else (end, reason)
        events += _stream(writer, person, wire, "screen", (shared, stop), why)
    data_repeated = rng.random() < 0.5
    destroyed = writer.monitoring(
        end, "connectionDestroyed", reason=reason, connection=wire(repeat_data=data_repeated)
    )
    writer.lane([*events, (end, destroyed)])


def _stream(
    writer: SessionWriter,
    person: _Person,
    wire: _Wire,
    video_type: str | None,
    span: tuple[int, int],
    reason: str,
) -> list[tuple[int, Body]]:
    """A stream's ``streamCreated`` and ``streamDestroyed``, at the ends of ``span``."""
    rng = writer.rng
    start, end = span
    stream_id = uuid_of(rng)
    name = person.name or ""
    if video_type == "screen":
        name = f"{person.name or 'Guest'}'s screen"
    writer.streams.append(StreamSpan(stream_id, start, end, has_video=video_type is not None))

    def stream() -> Body:
        connection = wire(repeat_data=rng.random() < 0.5)
        body: Body = {"id": stream_id, "connection": connection, "createdAt": writer.at(start)}
        body["name"] = name
        if video_type is not None:  # absent for an audio-only stream
            body["videoType"] = video_type
        return body

    return [
        (start, writer.monitoring(start, "streamCreated", stream=stream())),
        (end, writer.monitoring(end, "streamDestroyed", reason=reason, stream=stream())),
    ]


def video_session_id_of(rng: random.Random, tenant: VideoTenant) -> str:
    """Shaped like a Vonage session id: ``2_`` and base64url text that starts with the
    project's API key (``1~46339892~...``)."""
    raw = f"1~{tenant.project_id}~".encode() + rng.randbytes(36)
    return "2_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
