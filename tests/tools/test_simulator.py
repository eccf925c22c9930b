"""``meetings-simulate``: repeatable realistic traffic, Vonage's faults at the configured rates,
and a real ingest storing every callback it was sent."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest

from ingest.server import IngestServer
from ingest.settings import IngestSettings
from schemas import DecodeFailure, decode_callback
from schemas.timestamps import parse_timestamp, to_epoch_ms
from schemas.topics import RAW
from servicekit.env import Secret
from servicekit.kafka import KafkaSettings
from tests.conftest import TopicFactory
from tests.ingest.conftest import header_map, raw_reader
from tests.kafka_helpers import consume_until, create_topic, unique_name
from tools.devkafka import free_port
from tools.simulator.cli import main
from tools.simulator.plan import Plan, Scenario, build_plan
from tools.simulator.progress import Progress
from tools.simulator.sender import RetryPolicy, Target
from tools.simulator.tally import Tally

START = "2021-11-02T15:00:00.000Z"
START_MS = to_epoch_ms(parse_timestamp(START))
SCENARIO = Scenario(
    sessions=40, seed=7, start_ms=START_MS, rate=200, duplicate_rate=0.05, reorder_rate=0.05
)
TIME_FIELDS = ("started_at", "ended_at", "expires_at", "created_at")


def bodies(plan: Plan) -> list[bytes]:
    return [delivery.body for delivery in plan.deliveries]


# -- generation ----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_callbacks_in_the_same_order() -> None:
    first, second = build_plan(SCENARIO), build_plan(SCENARIO)
    assert first.deliveries == second.deliveries
    assert bodies(build_plan(replace(SCENARIO, seed=8))) != bodies(first)


def test_delivery_faults_leave_the_meetings_unchanged() -> None:
    clean = build_plan(replace(SCENARIO, duplicate_rate=0, reorder_rate=0))
    faulty = build_plan(SCENARIO)
    assert set(bodies(clean)) == set(bodies(faulty))


def test_every_body_is_a_valid_callback_of_a_realistic_meeting() -> None:
    plan = build_plan(SCENARIO)
    decoded = [decode_callback(body) for body in bodies(plan)]
    failures = [failure for failure in decoded if isinstance(failure, DecodeFailure)]
    assert failures == []
    events = Counter(orjson.loads(body)["event"] for body in set(bodies(plan)))
    assert events["session:started"] == events["session:ended"] == SCENARIO.sessions
    assert events["session:participant:joined"] > events["session:participant:left"] > 0
    assert events["recording:started"] == events["recording:ended"] > 0
    assert events["recording:uploaded"] == events["recording:started"]
    assert 0 < events["room:expired"] < SCENARIO.sessions
    hosts = [orjson.loads(body) for body in set(bodies(plan))]
    assert any(body.get("is_host") is True for body in hosts)


def test_routes_follow_vonages_three_callback_urls() -> None:
    routes = {(d.event.split(":")[0], d.route) for d in build_plan(SCENARIO).deliveries}
    assert routes == {
        ("session", "/callbacks/sessions"),
        ("recording", "/callbacks/recordings"),
        ("room", "/callbacks/rooms"),
    }


def test_duplicates_are_exact_resends_at_about_the_configured_rate() -> None:
    plan = build_plan(replace(SCENARIO, sessions=200, duplicate_rate=0.1, reorder_rate=0))
    originals = [d.body for d in plan.deliveries if not d.duplicate]
    resent = [d.body for d in plan.deliveries if d.duplicate]
    assert len(set(originals)) == len(originals)
    assert set(resent) <= set(originals)
    assert 0.08 < len(resent) / len(originals) < 0.12
    # A re-send comes after the callback it repeats.
    seen: set[bytes] = set()
    for delivery in plan.deliveries:
        assert not delivery.duplicate or delivery.body in seen
        seen.add(delivery.body)


def test_reordered_callbacks_really_overtake_later_ones_at_about_the_configured_rate() -> None:
    in_order = build_plan(replace(SCENARIO, sessions=200, duplicate_rate=0, reorder_rate=0))
    shuffled = build_plan(replace(SCENARIO, sessions=200, duplicate_rate=0, reorder_rate=0.05))
    rank = {body: number for number, body in enumerate(bodies(in_order))}
    assert rank.keys() == set(bodies(shuffled))
    delayed = [d for d in shuffled.deliveries if d.delayed]
    assert 0.04 < len(delayed) / len(shuffled.deliveries) < 0.06
    latest_rank_so_far = -1
    for delivery in shuffled.deliveries:
        if delivery.delayed:
            assert rank[delivery.body] < latest_rank_so_far, "a delayed callback overtook none"
        latest_rank_so_far = max(latest_rank_so_far, rank[delivery.body])


def test_sends_are_paced_and_timestamps_stay_near_the_run() -> None:
    plan = build_plan(SCENARIO)
    sends = [delivery.send_at_s for delivery in plan.deliveries]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sends)]
    assert min(gaps) >= 1 / SCENARIO.rate - 1e-9
    # The time scale is chosen so the run averages the target rate.
    assert 0.8 < len(plan.deliveries) / plan.duration_s / SCENARIO.rate <= 1.0
    assert plan.meeting_span_ms > 20 * 60_000  # the meetings themselves last minutes
    times = [
        to_epoch_ms(parse_timestamp(value))
        for body in bodies(plan)
        for name, value in orjson.loads(body).items()
        if name in TIME_FIELDS
    ]
    end_ms = START_MS + plan.duration_s * 1000
    assert min(times) >= START_MS - 1_000
    assert max(times) <= end_ms


def test_an_explicit_time_scale_compresses_meeting_time() -> None:
    plan = build_plan(replace(SCENARIO, sessions=5, time_scale=60, rate=10_000))
    assert plan.time_scale == 60
    assert plan.duration_s == pytest.approx(plan.meeting_span_ms / 60 / 1000, rel=0.05)


# -- retries and display -------------------------------------------------------------------


def test_retry_after_is_honoured_up_to_a_bound() -> None:
    policy = RetryPolicy(max_wait_s=3.0, backoff_s=0.25)
    assert policy.wait_s(1, "2") == 2.0
    assert policy.wait_s(1, "120") == 3.0
    assert policy.wait_s(1, None) == 0.25
    assert policy.wait_s(3, None) == 1.0
    assert policy.wait_s(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.25


def test_a_base_url_gets_per_kind_routes_and_a_full_url_gets_everything() -> None:
    assert Target("http://127.0.0.1:8080").url_for("/callbacks/rooms") == (
        "http://127.0.0.1:8080/callbacks/rooms"
    )
    assert Target("http://h:1/callbacks?token=x").url_for("/callbacks/rooms") == (
        "http://h:1/callbacks?token=x"
    )


def test_progress_rewrites_one_line_on_a_terminal_and_writes_lines_otherwise() -> None:
    tally = Tally(planned=10, sent=4, accepted=3)
    terminal, log = io.StringIO(), io.StringIO()
    for stream, interactive in ((terminal, True), (log, False)):
        progress = Progress(tally, stream, interactive=interactive)
        progress.show()
        progress.show()
        progress.close()
    assert terminal.getvalue().startswith("\rsent 4/10  accepted 3  retries 0  errors 0")
    assert terminal.getvalue().count("\r") == 2
    assert terminal.getvalue().endswith("\n")
    assert log.getvalue().count("\n") == 2
    assert "\r" not in log.getvalue()


# -- against a real ingest -----------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    url: str
    raw_topic: str


@contextlib.asynccontextmanager
async def running_ingest(kafka_bootstrap: str, **settings: Any) -> AsyncIterator[Ingest]:
    """The real ingest app on a real port, storing into a topic of its own."""
    prefix = unique_name("sim") + "."
    raw_topic = await create_topic(kafka_bootstrap, RAW.name_under(prefix), partitions=4)
    server = IngestServer(
        IngestSettings(
            kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix),
            host="127.0.0.1",
            port=0,
            readiness_interval_s=0.2,
            **settings,
        ),
        max_connections=64,  # as production serves it
    )
    await server.start()
    try:
        yield Ingest(f"http://127.0.0.1:{server.port}/", raw_topic)
    finally:
        await server.stop()


@pytest.fixture
async def ingest(kafka_bootstrap: str, new_topic: TopicFactory) -> AsyncIterator[Ingest]:
    async with running_ingest(kafka_bootstrap) as running:
        yield running


async def test_a_run_against_ingest_stores_every_callback_it_sent(
    ingest: Ingest, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--sessions", "5", "--rate", "500", "--seed", "3", "--start", START]
    faults = ["--duplicate-rate", "0.1", "--reorder-rate", "0.1"]
    # main() runs its own event loop, so it gets a thread; ingest serves on this test's loop.
    code = await asyncio.to_thread(main, ["--url", ingest.url, *args, *faults])

    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "result     every callback was accepted" in captured.out
    assert "latency    p50 " in captured.out
    assert "callbacks/s (target 500)" in captured.out
    assert "sent " in captured.err  # the progress line
    expected = build_plan(
        Scenario(
            sessions=5, seed=3, start_ms=START_MS, rate=500, duplicate_rate=0.1, reorder_rate=0.1
        )
    )
    assert expected.duplicates > 0
    assert expected.delayed > 0
    async with raw_reader(kafka_bootstrap, ingest.raw_topic) as consumer:
        records = await consume_until(
            consumer,
            lambda records: len(records) >= len(expected.deliveries),
            what="every simulated callback in the raw topic",
        )
    missing = Counter(bodies(expected)) - Counter(record.value for record in records)
    assert not missing
    routes = {orjson.loads(r.value)["event"]: header_map(r)["source-route"] for r in records}
    assert routes["room:expired"] == b"/callbacks/rooms"
    assert routes["recording:uploaded"] == b"/callbacks/recordings"


async def test_a_signed_video_run_against_ingest_stores_every_callback_it_sent(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions_secret, archives_secret = "sessions-" + "s" * 32, "archives-" + "a" * 32
    secrets = {
        "video_sessions_secret": Secret(sessions_secret),
        "video_archives_secret": Secret(archives_secret),
    }
    scenario = Scenario(
        sessions=4,
        seed=2,
        start_ms=START_MS,
        rate=1000,
        source="video",
        duplicate_rate=0.1,
        reorder_rate=0.1,
        upload_before_stop_rate=0.5,
    )
    args = ["--source", "video", "--sessions", "4", "--seed", "2", "--start", START]
    args += ["--rate", "1000", "--duplicate-rate", "0.1", "--reorder-rate", "0.1", "--quiet"]
    args += ["--upload-before-stop-rate", "0.5"]
    args += ["--video-sessions-secret", sessions_secret, "--video-archives-secret", archives_secret]
    async with running_ingest(kafka_bootstrap, **secrets) as ingest:
        code = await asyncio.to_thread(main, ["--url", ingest.url, *args])

        captured = capsys.readouterr()
        assert code == 0, captured.out + captured.err
        expected = build_plan(scenario)
        assert f"statuses   200: {len(expected.deliveries)}" in captured.out
        async with raw_reader(kafka_bootstrap, ingest.raw_topic) as consumer:
            records = await consume_until(
                consumer,
                lambda records: len(records) >= len(expected.deliveries),
                what="every simulated Video callback in the raw topic",
            )
    assert Counter(record.value for record in records) == Counter(bodies(expected))
    routes = {header_map(r)["source-route"] for r in records if b'"event":"archive"' in r.value}
    assert routes == {b"/video/archives"}
    keys = {record.key for record in records}
    assert keys == {orjson.loads(body)["sessionId"].encode() for body in bodies(expected)}


async def test_a_run_that_cannot_store_its_callbacks_exits_1(
    new_topic: TopicFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = IngestSettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),  # nothing listens
        host="127.0.0.1",
        port=0,
        produce_timeout_s=0.3,
        retry_after_s=1,
    )
    server = IngestServer(settings, max_connections=64)
    await server.start()
    try:
        args = ["--sessions", "1", "--seed", "1", "--max-attempts", "2", "--max-retry-wait", "0.1"]
        code = await asyncio.to_thread(main, ["--url", f"http://127.0.0.1:{server.port}/", *args])
    finally:
        await server.stop()

    out = capsys.readouterr().out
    assert code == 1
    assert "accepted   0/" in out
    assert "503: " in out
    assert "NOT accepted" in out
