"""``python -m processor replay``: the raw topic re-derived under another prefix, compared with
what the live processor derived (``meetings-diff``): no difference, whatever the traffic's
duplicates, reordering and poison; restartable; never into the live topics."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from processor.replay import main as replay_main
from processor.replay.run import ReplayStoppedError, replay, replay_settings
from processor.runtime import ProcessorService
from processor.settings import ProcessorSettings
from schemas.topics import RAW, SESSIONS
from servicekit.partitioner import murmur2
from tests.kafka_helpers import create_topic, in_thread, unique_name, wait_until
from tests.processor.runtime.conftest import PARTITIONS, RawCallback, feed, read_all, running
from tests.processor.runtime.scripted_meeting import recent_ms, scripted_meeting
from tools.diff import main as diff_main

IDLE_TIMEOUT_S = 60


def environment(settings: ProcessorSettings) -> dict[str, str]:
    """The live processor's settings, as its environment would give them."""
    return {
        "SESSION_IDLE_TIMEOUT": str(IDLE_TIMEOUT_S),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "MEETINGS_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "PROCESSOR_GROUP_ID": settings.group_id,
        "TOPIC_PARTITIONS": str(PARTITIONS),
        "COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
        "EXPIRY_CHECK_INTERVAL_S": str(settings.expiry_check_interval_s),
        "PROCESSOR_LOG_LEVEL": "warning",
    }


def traffic(sessions: int, seed: int, name: str = "replayed") -> list[RawCallback]:
    """Scripted meetings with a quarter of the callbacks sent twice, every meeting's
    callbacks shuffled (end before start, leave before join), and a poison record."""
    rng = random.Random(seed)
    t0 = recent_ms(20)
    sent: list[RawCallback] = []
    for number in range(sessions):
        meeting = scripted_meeting(f"{name}-{number}", f"room-{name}-{number}", t0=t0 + number)
        meeting += rng.sample(meeting, len(meeting) // 4)
        rng.shuffle(meeting)
        sent += meeting
    poison = RawCallback(
        body=b'{"event": "session:started", "session_id": 7', key=b"p", received_at_ms=t0
    )
    sent.insert(len(sent) // 2, poison)
    return sent


def abandoned_session(t0: int) -> tuple[str, list[RawCallback], list[RawCallback]]:
    """A session that starts, is joined and never ends, on raw partition 0; and, to follow
    once it has timed out, a later meeting on the same partition (past its idle timeout in
    stream time, so a replay's clock passes it too)."""
    session_id, later_id = (
        next(
            sid
            for n in range(1000)
            if (murmur2((sid := f"{name}-{n}").encode()) & 0x7FFFFFFF) % PARTITIONS == 0
        )
        for name in ("abandoned", "later")
    )
    meeting = scripted_meeting(session_id, "room-abandoned", t0=t0)[:2]  # started, Ada joined
    later = scripted_meeting(later_id, "room-later", t0=t0 + 10 * IDLE_TIMEOUT_S * 1000)
    return session_id, meeting, later


async def test_a_replay_derives_what_the_live_processor_derived(
    settings: ProcessorSettings,
) -> None:
    live_settings = dataclasses.replace(settings, session_idle_timeout_s=IDLE_TIMEOUT_S)
    sent = traffic(sessions=12, seed=29)
    abandoned, meeting, later = abandoned_session(recent_ms(20))
    await feed(settings, [*sent, *meeting])
    async with running(live_settings) as live:
        # On the wall clock, once caught up: its last callback is 20 minutes old.
        await wait_until(
            lambda: _timed_out(live, abandoned), what="the abandoned session to time out"
        )
        await feed(settings, later)
        sent += [*meeting, *later]
        await wait_until(
            lambda: live.processed_records >= len(sent), what="the live processor to apply all"
        )
    live_prefix, replay_prefix = settings.kafka.topic_prefix, unique_name("replay") + "."

    status, out, err = await in_thread(
        replay_main, ["--to-prefix", replay_prefix, "--report-every", "0.2"], environment(settings)
    )
    assert status == 0, err
    assert f"replayed {len(sent):,} records" in out, out
    assert f"meetings-diff {live_prefix} {replay_prefix}" in out
    assert f"{len(sent):,}/{len(sent):,} records (100.0%)" in err

    status, out, _ = await in_thread(
        diff_main, [live_prefix, replay_prefix, "--bootstrap", settings.kafka.bootstrap_servers], {}
    )
    assert status == 0, out
    assert "participant.joined" in out  # there was something to compare
    assert "dlq: " in out
    assert b'"ended_by":"timeout"' in await _summary_of(settings, replay_prefix, abandoned)
    assert out.rstrip().endswith("identical")

    # Run again: it has reached the end already, and says so without reading anything.
    status, out, err = await in_thread(
        replay_main, ["--to-prefix", replay_prefix], environment(settings)
    )
    assert status == 0, err
    assert "replayed 0 records" in out

    # Switch: a processor goes on from where the replay stopped, live, into the new topics,
    # as the replay's summary says; the old topics get the same traffic.
    switched_environ = dict(
        variable.split("=", 1) for variable in out.split("go on from here")[1].split()[-3:]
    )
    switched = dataclasses.replace(
        live_settings,
        kafka=dataclasses.replace(
            settings.kafka, topic_prefix=switched_environ["MEETINGS_TOPIC_PREFIX"]
        ),
        input_prefix=switched_environ["PROCESSOR_RAW_TOPIC_PREFIX"],
        group_id=switched_environ["PROCESSOR_GROUP_ID"],
    )
    more = traffic(sessions=4, seed=30, name="after-the-switch")
    await feed(settings, more)
    for processor in (live_settings, switched):
        async with running(processor) as service:
            await wait_until(
                lambda: service.processed_records >= len(more), what="the new traffic applied"
            )
    status, out, _ = await in_thread(
        diff_main, [live_prefix, replay_prefix, "--bootstrap", settings.kafka.bootstrap_servers], {}
    )
    assert status == 0, out


@pytest.mark.parametrize("prefix", ["live", "not a prefix!"])
async def test_a_replay_never_writes_into_the_live_topics(
    settings: ProcessorSettings, prefix: str
) -> None:
    to_prefix = settings.kafka.topic_prefix if prefix == "live" else prefix
    status, _, err = await in_thread(replay_main, ["--to-prefix", to_prefix], environment(settings))
    assert status == 2
    assert ("live prefix" if prefix == "live" else "not a usable topic prefix") in err


async def test_a_prefix_whose_raw_topic_has_callbacks_is_refused(
    settings: ProcessorSettings, kafka_bootstrap: str
) -> None:
    """Replaying pipeline B into pipeline A's prefix would write into A's live topics."""
    pipeline_a = settings.kafka.topic_prefix
    await feed(settings, traffic(sessions=1, seed=1))
    pipeline_b = unique_name("b") + "."
    await create_topic(kafka_bootstrap, RAW.name_under(pipeline_b), partitions=PARTITIONS)
    environ = environment(settings) | {"MEETINGS_TOPIC_PREFIX": pipeline_b}
    status, _, err = await in_thread(replay_main, ["--to-prefix", pipeline_a], environ)
    assert status == 2, err
    assert f"{RAW.name_under(pipeline_a)} holds callbacks" in err


def _timed_out(service: ProcessorService, session_id: str) -> bool:
    state = service.sessions_of(0)
    session = None if state is None else state.sessions.get(session_id)
    return session is not None and session.timed_out_at is not None


async def _summary_of(settings: ProcessorSettings, prefix: str, session_id: str) -> bytes:
    """The replay's last session.ended of ``session_id``."""
    records = await read_all(settings.kafka.bootstrap_servers, SESSIONS.name_under(prefix))
    [*_, last] = [
        r.value for r in records if r.key == session_id.encode() and b"session.ended" in r.value
    ]
    return bytes(last)


async def test_from_time_starts_a_new_replay_at_the_callbacks_received_since(
    settings: ProcessorSettings,
) -> None:
    earlier, later = recent_ms(40), recent_ms(20)
    old = [r for n in range(4) for r in scripted_meeting(f"old-{n}", f"room-old-{n}", t0=earlier)]
    new = [r for n in range(4) for r in scripted_meeting(f"new-{n}", f"room-new-{n}", t0=later)]
    await feed(settings, [*old, *new])
    to_prefix = unique_name("recent") + "."
    status, out, err = await in_thread(
        replay_main,
        ["--to-prefix", to_prefix, "--from-time", str(later)],
        environment(settings),
    )
    assert status == 0, err
    assert f"replayed {len(new):,} records" in out
    records = await read_all(settings.kafka.bootstrap_servers, SESSIONS.name_under(to_prefix))
    assert {r.key.decode() for r in records if r.key} == {f"new-{n}" for n in range(4)}


async def test_a_stopped_replay_goes_on_where_it_stopped(settings: ProcessorSettings) -> None:
    """SIGTERM or Ctrl-C (``interrupt``) stops the replay cleanly, saying so; run again, it
    reads only what is left, and the result is what one uninterrupted replay gives."""
    sent = traffic(sessions=6, seed=7)
    await feed(settings, sent)
    to_prefix = unique_name("resumed") + "."
    replaying = replay_settings(dataclasses.replace(settings, create_topics=True), to_prefix)
    interrupt = asyncio.Event()
    interrupt.set()  # asked to stop as soon as it is under way
    lines: list[str] = []
    with pytest.raises(ReplayStoppedError, match="the same command goes on from there"):
        await replay(replaying, report=lines.append, report_every_s=0.05, interrupt=interrupt)
    assert lines[0].endswith(f"{len(sent):,} records")  # "replaying ... into ...: N records"
    summary = await replay(replaying, report=lines.append)
    assert 0 < summary.records <= len(sent)  # what was left; the diff shows nothing was lost

    async with running(settings) as live:
        await wait_until(lambda: live.processed_records >= len(sent), what="the live run")
    status, out, _ = await in_thread(
        diff_main,
        [settings.kafka.topic_prefix, to_prefix, "--bootstrap", settings.kafka.bootstrap_servers],
        {},
    )
    assert status == 0, out


async def test_kafka_out_of_reach_is_exit_1_naming_it(settings: ProcessorSettings) -> None:
    environ = environment(settings) | {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    status, _, err = await in_thread(replay_main, ["--to-prefix", "elsewhere."], environ)
    assert status == 1
    assert "processor replay:" in err
