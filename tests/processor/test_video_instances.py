"""Reused Video session ids (contract §7): instances, late callbacks revising an ended instance,
the empty rule, and all of it across a restore from the changelog."""

from __future__ import annotations

import msgspec

from processor.engine import (
    all_records,
    changed_records,
    expire_empty,
    expire_idle,
    release_previous,
    restore_sessions,
    snapshot,
)
from processor.engine.changelog import PREVIOUS_HEADER_CHUNK, session_of_key
from processor.sources import ParticipantKey
from schemas.events import SessionEndedEvent
from tests.processor.video_builders import (
    SESSION_ID,
    VideoPlayer,
    connected,
    disconnected,
    person,
    session_created,
    session_destroyed,
)

BY_USER = ParticipantKey("data.userId")
_KEY = msgspec.msgpack.Decoder(tuple[str, int, int])


def ended_instances(player: VideoPlayer) -> dict[int, SessionEndedEvent]:
    """The latest session.ended of each instance."""
    latest: dict[int, SessionEndedEvent] = {}
    for event in player.events:
        if isinstance(event, SessionEndedEvent):
            latest[event.instance] = event
    return latest


def first_meeting() -> list[tuple[bytes, bytes]]:
    ada = person("u-1")
    return [
        session_created(0),
        connected(1_000, "c1", ada),
        disconnected(60_000, "c1"),
        session_destroyed(61_000),
    ]


def test_a_session_created_after_the_end_starts_the_next_instance() -> None:
    player = VideoPlayer(BY_USER).play(first_meeting())
    version = player.current.version
    player.play([session_created(3_600_000), connected(3_601_000, "c2", person("u-2"))])
    session = player.current
    assert (session.instance, session.status) == (2, "active")
    assert session.version > version  # the state record's version keeps increasing
    starts = player.of_type("session.started")
    assert [(s.instance, s.started_at) for s in starts] == [
        (1, "2016-08-03T20:54:48.000Z"),
        (2, "2016-08-03T21:54:48.000Z"),
    ]
    assert starts[0].event_id != starts[1].event_id
    joined = player.of_type("participant.joined")[-1]
    assert (joined.instance, joined.stint) == (2, 1)
    state = player.state()
    assert (state.instance, state.active_count, state.unique_participants) == (2, 1, 1)


def test_a_connection_after_the_end_starts_the_next_instance_without_session_created() -> None:
    player = VideoPlayer(BY_USER).play(first_meeting())
    player.play([connected(3_601_000, "c2", person("u-1"))])
    assert player.current.instance == 2
    assert player.of_type("session.started")[-1].instance == 2


def test_a_late_callback_of_the_ended_instance_revises_it_not_the_new_one() -> None:
    player = VideoPlayer(BY_USER).play(first_meeting())
    player.play([session_created(3_600_000), connected(3_601_000, "c2", person("u-2"))])
    before = ended_instances(player)[1].summary
    # Bob's connection of the first meeting, delivered a day late.
    player.play([connected(10_000, "c-late", person("u-3")), disconnected(20_000, "c-late")])
    revised = ended_instances(player)[1]
    assert revised.summary.revision > before.revision
    assert (revised.summary.unique_participants, revised.summary.participant_seconds) == (2, 69)
    assert 2 not in ended_instances(player)  # the new instance is untouched
    assert player.current.instance == 2
    assert player.state().unique_participants == 1


def test_an_instance_empty_for_long_enough_ends_with_ended_by_empty() -> None:
    player = VideoPlayer(BY_USER).play(
        [connected(0, "c1", person("u-1")), connected(5_000, "c2", person("u-2"))]
    )
    assert expire_empty(player.current).changed is False  # people are connected
    player.play([disconnected(30_000, "c2"), disconnected(20_000, "c1")])
    assert player.current.video is not None
    assert player.current.video.emptied_at == player.current.video.opened_at + 30_000
    applied = expire_empty(player.current)
    player.events.extend(applied.events)
    summary = player.final_summary().summary
    assert (summary.ended_by, summary.ended_at) == ("empty", "2016-08-03T20:55:18.000Z")
    assert player.state().status == "ended"
    # The same id used again later: the next instance.
    player.play([connected(900_000, "c3", person("u-1"))])
    assert (player.current.instance, player.current.status) == (2, "active")


def test_a_session_destroyed_after_the_empty_end_outranks_it() -> None:
    player = VideoPlayer().play([connected(0, "c1"), disconnected(10_000, "c1")])
    player.events.extend(expire_empty(player.current).events)
    player.play([session_destroyed(15_000, "forceDisconnected")])
    summary = player.final_summary().summary
    assert (summary.ended_by, summary.end_reason, summary.revision) == (
        "callback",
        "forceDisconnected",
        2,
    )


def test_instances_survive_a_restore_and_write_the_previous_one_apart() -> None:
    player = VideoPlayer(BY_USER).play(first_meeting())
    changed_records(player.current)  # as committed
    player.play([session_created(3_600_000), connected(3_601_000, "c2", person("u-2"))])
    records = changed_records(player.current)
    chunks = [_KEY.decode(key)[1] for key, value in records if value is not None]
    assert PREVIOUS_HEADER_CHUNK in chunks  # the ended instance, moved to its own key space
    assert {session_of_key(key) for key, _ in records} == {SESSION_ID}

    restored = player.restarted()
    assert snapshot(restored.current) == player.state()
    assert restored.current.previous is not None
    assert restored.current.previous.instance == 1
    restored.play([connected(10_000, "c-late", person("u-3")), disconnected(20_000, "c-late")])
    assert ended_instances(restored)[1].summary.unique_participants == 2


def test_the_changelog_of_replaced_instances_is_what_a_restore_reads() -> None:
    """The records written commit by commit, laid over each other as compaction would,
    restore exactly the live session, instances and all."""
    player = VideoPlayer(BY_USER)
    latest: dict[bytes, bytes | None] = {}
    batches = [
        first_meeting(),
        [session_created(3_600_000), connected(3_601_000, "c2", person("u-2"))],
        [disconnected(3_700_000, "c2"), session_destroyed(3_700_001)],
        [session_created(7_200_000), connected(7_201_000, "c3", person("u-3"))],
        [connected(3_650_000, "c-late", person("u-4"))],  # revises instance 2
    ]
    for batch in batches:
        player.play(batch)
        latest.update(changed_records(player.current))
    (restored,) = restore_sessions((k, v) for k, v in latest.items() if v is not None)
    assert restored.instance == 3
    assert restored.previous is not None
    assert restored.previous.instance == 2
    assert snapshot(restored) == player.state()
    assert dict(all_records(restored)) == dict(all_records(player.current))


def test_the_previous_instance_is_let_go_with_its_records() -> None:
    player = VideoPlayer(BY_USER).play(first_meeting())
    player.play([session_created(3_600_000)])
    changed_records(player.current)
    applied = release_previous(player.current)
    assert applied.changed
    assert player.current.previous is None
    records = changed_records(player.current)
    gone = [key for key, value in records if value is None]
    assert any(_KEY.decode(key)[1] == PREVIOUS_HEADER_CHUNK for key in gone)


def test_a_session_destroyed_after_an_idle_timeout_ends_the_same_instance() -> None:
    player = VideoPlayer().play([connected(0, "c1")])
    player.events.extend(expire_idle(player.current).events)
    player.play([session_destroyed(50_000)])
    assert player.current.instance == 1
    summary = player.final_summary().summary
    assert (summary.ended_by, summary.ended_at) == ("callback", "2016-08-03T20:55:38.000Z")


def test_a_second_session_destroyed_later_is_the_end_of_the_next_instance() -> None:
    player = VideoPlayer().play([connected(0, "c1"), session_destroyed(10_000)])
    player.play([session_destroyed(900_000), session_created(800_000)])
    assert player.current.instance == 2
    ended = ended_instances(player)[2].summary
    assert (ended.started_at, ended.ended_at) == (
        "2016-08-03T21:08:08.000Z",
        "2016-08-03T21:09:48.000Z",
    )
