"""``meetings-simulate --source video``: Vonage Video API traffic in Vonage's wire format, each
connection's callbacks in order whatever the delivery faults, and signed as Vonage signs.
Broker-free: the HTTP tests run against a stand-in for ingest's two Video routes."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web

from schemas.decoding import DecodeFailure, decode_video_callback
from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from schemas.timestamps import parse_timestamp, to_epoch_ms
from schemas.video import VIDEO_EVENTS
from tools.simulator.cli import main
from tools.simulator.plan import Delivery, Plan, Scenario, build_plan
from tools.simulator.sender import Target
from tools.simulator.signing import VonageSigner
from tools.simulator.summary import summary
from tools.simulator.tally import Tally
from tools.simulator.video import order_key
from tools.simulator.video_census import census

START = "2021-11-02T15:00:00.000Z"
START_MS = to_epoch_ms(parse_timestamp(START))
VIDEO = Scenario(
    sessions=300,
    seed=11,
    start_ms=START_MS,
    rate=1000,
    source="video",
    duplicate_rate=0.05,
    reorder_rate=0.05,
    upload_before_stop_rate=0.2,
)
SESSIONS_SECRET = "video-sessions-signature-secret-0123456789"
ARCHIVES_SECRET = "video-archives-signature-secret-9876543210"

Body = dict[str, Any]


def parsed(plan: Plan) -> Iterator[tuple[Delivery, Body]]:
    for delivery in plan.deliveries:
        yield delivery, orjson.loads(delivery.body)


def originals(plan: Plan) -> list[Body]:
    return [body for delivery, body in parsed(plan) if not delivery.duplicate]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(VIDEO)


# -- what is generated ---------------------------------------------------------------------


def test_every_body_decodes_as_a_video_callback(plan: Plan) -> None:
    decoded = [decode_video_callback(delivery.body) for delivery in plan.deliveries]
    callbacks = [callback for callback in decoded if not isinstance(callback, DecodeFailure)]
    assert len(callbacks) == len(decoded), [c for c in decoded if c not in callbacks][:3]
    assert {callback.canonical_event for callback in callbacks} == set(VIDEO_EVENTS)


def test_every_kind_of_callback_reason_and_status_is_played(plan: Plan) -> None:
    reasons: defaultdict[str, set[str | None]] = defaultdict(set)
    statuses: set[str] = set()
    video_types: set[str | None] = set()
    for body in originals(plan):
        reasons[body["event"]].add(body.get("reason"))
        if body["event"] == "archive":
            statuses.add(body["status"])
        if body["event"] == "streamCreated":
            video_types.add(body["stream"].get("videoType"))
    assert reasons["connectionDestroyed"] == {
        "clientDisconnected",
        "forceDisconnected",
        "networkDisconnected",
    }
    assert {"mediaStopped", "forceUnpublished", "networkDisconnected"} <= reasons["streamDestroyed"]
    assert reasons["sessionDestroyed"] == {None, "serverRotation", "forceDisconnected"}
    assert reasons["sessionNotification"] == {"serverRotation"}
    assert statuses == {"started", "paused", "stopped", "uploaded", "available", "failed"}
    assert video_types == {"camera", "screen", None}  # None: audio only, no videoType at all


def test_callbacks_go_to_the_session_monitoring_and_archive_routes(plan: Plan) -> None:
    routes = {(body["event"] == "archive", delivery.route) for delivery, body in parsed(plan)}
    assert routes == {(False, VIDEO_SESSIONS_ROUTE), (True, VIDEO_ARCHIVES_ROUTE)}


def test_bodies_are_in_vonages_wire_format(plan: Plan) -> None:
    end_ms = START_MS + plan.duration_s * 1000
    assert plan.tenant is not None
    for body in originals(plan):
        if body["event"] == "archive":
            tenant = body["applicationId"]
            assert isinstance(tenant, str)
            assert body["projectId"] == body["partnerId"] == int(tenant)
            assert isinstance(body["updatedAt"], int)
            assert START_MS <= body["updatedAt"] <= end_ms
            assert (body["url"] is not None) == (body["status"] == "available")
            assert ("streams" in body) == (body["status"] == "started")
        else:
            assert body["projectId"] == plan.tenant.api_key  # a string here
            assert isinstance(body["timestamp"], int)
            assert START_MS <= body["timestamp"] <= end_ms
        assert len(body["sessionId"]) > 60
        assert body["sessionId"].startswith("2_")


def test_people_are_named_by_json_token_data_which_destroyed_events_may_leave_out(
    plan: Plan,
) -> None:
    created_data = {}
    destroyed_data: list[str] = []
    for body in originals(plan):
        if body["event"] == "connectionCreated":
            token = orjson.loads(body["connection"]["data"])
            assert isinstance(token, dict)
            assert token["userId"].startswith("u-")
            created_data[body["connection"]["id"]] = body["connection"]["data"]
        elif body["event"] == "connectionDestroyed":
            data = body["connection"]["data"]
            assert data in ("", created_data[body["connection"]["id"]])
            destroyed_data.append(data)
    assert 0.3 < destroyed_data.count("") / len(destroyed_data) < 0.7


def test_the_same_seed_gives_the_same_video_callbacks(plan: Plan) -> None:
    again = build_plan(VIDEO)
    assert again.deliveries == plan.deliveries
    other = build_plan(replace(VIDEO, seed=12))
    assert {d.body for d in other.deliveries}.isdisjoint(d.body for d in plan.deliveries)


def test_reconnects_after_a_network_drop_are_new_connections_of_the_same_person() -> None:
    # At time scale 1 the timestamps are Vonage's own: seconds between drop and return.
    unfaulted = replace(VIDEO, sessions=100, duplicate_rate=0, reorder_rate=0)
    slow = build_plan(replace(unfaulted, time_scale=1.0))
    people: dict[str, tuple[str, str]] = {}  # connection id -> (session, userId)
    opened: defaultdict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    drops: list[tuple[tuple[str, str], int, str]] = []
    for body in originals(slow):
        if body["event"] == "connectionCreated":
            person = (body["sessionId"], orjson.loads(body["connection"]["data"])["userId"])
            people[body["connection"]["id"]] = person
            opened[person].append((body["timestamp"], body["connection"]["id"]))
        elif body.get("reason") == "networkDisconnected" and "connection" in body:
            connection_id = body["connection"]["id"]
            drops.append((people[connection_id], body["timestamp"], connection_id))
    returns = []
    for person, dropped_at, lost in drops:
        later = [(at, connection) for at, connection in opened[person] if at > dropped_at]
        if later and later[0][0] - dropped_at <= 10_000:
            returns.append(later[0])
            assert later[0][0] - dropped_at >= 2_000, "back before the drop was noticed"
            assert later[0][1] != lost
    assert len(drops) > 50
    assert len(returns) > 0.8 * len(drops)


def test_each_connections_callbacks_keep_their_order_through_retries_and_reordering() -> None:
    heavy = replace(VIDEO, sessions=100, duplicate_rate=0.3, reorder_rate=0.3)
    in_order = build_plan(replace(heavy, duplicate_rate=0, reorder_rate=0))
    rank = {delivery.body: number for number, delivery in enumerate(in_order.deliveries)}
    assert len(rank) == len(in_order.deliveries)
    shuffled = build_plan(heavy)
    latest: dict[str, int] = {}
    events: defaultdict[str, list[str]] = defaultdict(list)
    for delivery in shuffled.deliveries:
        if delivery.order_key is None:
            continue
        assert rank[delivery.body] >= latest.get(delivery.order_key, -1), delivery.body
        latest[delivery.order_key] = rank[delivery.body]
        events[delivery.order_key].append(delivery.event)
    for sequence in events.values():
        assert sequence[0] == "connectionCreated"
        assert sequence[-1] == "connectionDestroyed"
    # The faults were real: connection callbacks among both the re-sent and the delayed.
    keyed = [d for d in shuffled.deliveries if d.order_key is not None]
    assert sum(d.duplicate for d in keyed) > 0.2 * len(keyed)
    assert sum(d.delayed for d in keyed) > 0.05 * len(keyed)


def test_uploaded_before_stopped_happens_when_asked() -> None:
    def uploaded_first(rate: float) -> tuple[int, int]:
        asked = replace(VIDEO, upload_before_stop_rate=rate, duplicate_rate=0, reorder_rate=0)
        stopped: set[str] = set()
        early = uploads = 0
        for body in originals(build_plan(asked)):
            if body["event"] != "archive":
                continue
            if body["status"] == "stopped":
                stopped.add(body["id"])
            elif body["status"] == "uploaded":
                uploads += 1
                early += body["id"] not in stopped
        return early, uploads

    early, uploads = uploaded_first(1.0)
    assert early == uploads > 10
    assert uploaded_first(0.0)[0] == 0


def test_the_upload_order_changes_nothing_but_the_archives() -> None:
    def sessions_only(rate: float) -> list[bytes]:
        scenario = replace(VIDEO, upload_before_stop_rate=rate, duplicate_rate=0, reorder_rate=0)
        plan = build_plan(scenario)
        return [d.body for d in plan.deliveries if d.route == VIDEO_SESSIONS_ROUTE]

    assert sessions_only(0.0) == sessions_only(1.0)


def test_the_summary_counts_in_video_terms(plan: Plan) -> None:
    counted = census(d.body for d in plan.deliveries)
    bodies = originals(plan)
    assert counted.sessions == VIDEO.sessions
    assert counted.instances == sum(b["event"] == "sessionCreated" for b in bodies)
    assert counted.instances > counted.sessions  # some session ids are used twice
    assert counted.connections == sum(b["event"] == "connectionCreated" for b in bodies)
    assert counted.people < counted.connections  # the reconnects
    assert counted.screen_shares > 0
    assert counted.uploaded_before_stopped > 0
    lines = summary(plan, Tally(planned=len(plan.deliveries)), elapsed_s=1.0, interrupted=False)
    assert lines[0].startswith(f"simulated {VIDEO.sessions} video sessions (seed 11): ")
    assert lines[1].startswith(
        f"  video      {VIDEO.sessions} sessions ({counted.instances} instances), "
        f"{counted.people} people on {counted.connections} connections"
    )
    assert f"{counted.archives} archives" in lines[2]
    assert f"({plan.duplicates} re-sent" in lines[3]


# -- signing -------------------------------------------------------------------------------


def test_a_signature_is_vonages_jwt_over_the_exact_body() -> None:
    signer = VonageSigner(SESSIONS_SECRET, api_key="46339892", application_id="app-1")
    body = b'{"sessionId":"2_MX4","event":"sessionCreated"}'
    token = signer.token(body, now=1_700_000_000)

    claims = jwt.decode(token, SESSIONS_SECRET, algorithms=["HS256"])
    assert claims.pop("jti") != jwt.decode(signer.token(body), SESSIONS_SECRET, ["HS256"])["jti"]
    assert claims == {
        "iat": 1_700_000_000,
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "46339892",
        "application_id": "app-1",
    }
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, ARCHIVES_SECRET, algorithms=["HS256"])
    assert SESSIONS_SECRET not in repr(signer)


def test_only_routes_with_a_secret_are_signed(plan: Plan) -> None:
    signer = VonageSigner(ARCHIVES_SECRET, api_key="1", application_id="a")
    target = Target("http://127.0.0.1:1", signers={VIDEO_ARCHIVES_ROUTE: signer})
    archive = next(d for d in plan.deliveries if d.route == VIDEO_ARCHIVES_ROUTE)
    session = next(d for d in plan.deliveries if d.route == VIDEO_SESSIONS_ROUTE)
    scheme, _, token = target.request_headers(archive)["Authorization"].partition(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, ARCHIVES_SECRET, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(archive.body).hexdigest()
    assert target.request_headers(session) == {}


SLOW_ANSWER_S = 0.02
"""How long the stand-in takes to answer a ``connectionCreated``: the window in which a sender
that does not wait would get the connection's next callback in first."""


@dataclass
class VideoRoutes:
    """A stand-in for ingest's Video routes: verifies each request's signature with its
    route's secret against the raw body, keeps the bodies, answers ``200`` as ingest does, and
    notes any request that arrives while an earlier one of its connection is unanswered."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    routes: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    token_ids: set[str] = field(default_factory=set)
    unanswered: Counter[str] = field(default_factory=Counter)
    """Requests of each connection received and not yet answered."""
    overtakers: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        parsed = orjson.loads(body)
        key = order_key(parsed)
        if key is None:
            return self._answer(request, body)
        if self.unanswered[key]:
            self.overtakers.append(body)
        self.unanswered[key] += 1
        try:
            if parsed["event"] == "connectionCreated":
                await asyncio.sleep(SLOW_ANSWER_S)
            return self._answer(request, body)
        finally:
            self.unanswered[key] -= 1

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        secret = {VIDEO_SESSIONS_ROUTE: SESSIONS_SECRET, VIDEO_ARCHIVES_ROUTE: ARCHIVES_SECRET}
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(token, secret[request.path], algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            self.refused.append(f"{request.path}: {exc}")
            return web.Response(status=401)
        if (
            scheme != "Bearer"
            or claims["payload_hash"] != hashlib.sha256(body).hexdigest()
            or uuid.UUID(claims["jti"]).version != 4
        ):
            self.refused.append(f"{request.path}: {scheme} {claims}")
            return web.Response(status=401)
        self.token_ids.add(claims["jti"])
        self.bodies.append(body)
        self.routes[request.path] += 1
        return web.Response(status=200)


@pytest.fixture
async def video_routes() -> AsyncIterator[VideoRoutes]:
    routes = VideoRoutes()
    app = web.Application()
    app.router.add_post(VIDEO_SESSIONS_ROUTE, routes.handle)
    app.router.add_post(VIDEO_ARCHIVES_ROUTE, routes.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    routes.url = f"http://127.0.0.1:{port}"
    yield routes
    await runner.cleanup()


async def test_a_video_run_is_signed_sent_in_connection_order_and_200_is_accepted(
    video_routes: VideoRoutes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("INGEST_VIDEO_SESSIONS_SECRET", SESSIONS_SECRET)  # as ingest reads it
    args = ["--source", "video", "--sessions", "4", "--seed", "5", "--start", START]
    args += ["--rate", "3000", "--duplicate-rate", "0.1", "--quiet"]
    args += ["--url", video_routes.url, "--video-archives-secret", ARCHIVES_SECRET]
    # main() runs its own event loop, so it gets a thread; the routes serve on this one.
    code = await asyncio.to_thread(main, args)

    out = capsys.readouterr().out
    assert video_routes.refused == []
    assert video_routes.overtakers == []  # each connection's callbacks arrived in order
    assert code == 0, out
    expected = build_plan(
        Scenario(
            sessions=4,
            seed=5,
            start_ms=START_MS,
            rate=3000,
            source="video",
            duplicate_rate=0.1,
            reorder_rate=0.02,
            upload_before_stop_rate=0.1,
        )
    )
    assert Counter(video_routes.bodies) == Counter(d.body for d in expected.deliveries)
    assert video_routes.routes[VIDEO_ARCHIVES_ROUTE] > 0
    assert len(video_routes.token_ids) == len(expected.deliveries)  # each request signed anew
    assert f"statuses   200: {len(expected.deliveries)}" in out
    assert "simulated 4 video sessions (seed 5)" in out
    assert "result     every callback was accepted" in out


def test_a_dry_run_prints_the_video_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--source", "video", "--sessions", "2", "--seed", "5", "--start", START, "--dry-run"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    decoded = [decode_video_callback(line) for line in lines]
    assert lines
    assert not [failure for failure in decoded if isinstance(failure, DecodeFailure)]
