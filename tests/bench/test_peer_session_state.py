"""The per-session state the benchmark's peers keep (``bench.peers.session_state``): a scripted
meeting, duplicates, and agreement with the processor's engine on the benchmark's own traffic.
Broker-free, and free of any peer framework (Quix Streams is not in the `make test` venv)."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from bench.meetings import Body, raw_callbacks
from bench.peers.session_state import (
    SessionRecord,
    apply_callback,
    new_session,
    room_record,
    snapshot,
)
from bench.processor_state import applied

SESSION = "2_MX40NjMzOTg5Mn5-session-fg"
ROOM = "room-1"
NOW_MS = 1_700_000_000_000


def joined(participant_id: str, event: str = "session:participant:joined") -> Body:
    return {
        "event": event,
        "session_id": SESSION,
        "room_id": ROOM,
        "participant_id": participant_id,
        "name": None,
        "is_host": False,
    }


def left(participant_id: str) -> Body:
    return {**joined(participant_id), "event": "session:participant:left"}


def recording(event: str) -> Body:
    return {"event": event, "recording_id": "rec-1", "session_id": SESSION}


STARTED: Body = {
    "event": "session:started",
    "session_id": SESSION,
    "room_id": ROOM,
    "started_at": "2026-01-01T10:00:00.000Z",
}
ENDED: Body = {
    "event": "session:ended",
    "session_id": SESSION,
    "room_id": ROOM,
    "started_at": "2026-01-01T10:00:00.000Z",
    "ended_at": "2026-01-01T10:30:00.000Z",
}


def replayed(bodies: list[Body]) -> tuple[SessionRecord, list[bool]]:
    record = new_session(SESSION)
    return record, [apply_callback(record, body) for body in bodies]


def test_a_scripted_meeting_counts_joins_returns_peak_and_recording() -> None:
    record, _ = replayed(
        [
            STARTED,
            joined("a"),
            joined("b"),
            left("a"),
            joined("a"),  # a returns: a second stint
            joined("c"),  # three present: the peak
            left("b"),
            recording("recording:started"),
            recording("recording:ended"),
        ]
    )
    state = snapshot(record)
    assert state == {
        "session_id": SESSION,
        "room_id": ROOM,
        "status": "active",
        "started_at": "2026-01-01T10:00:00.000Z",
        "ended_at": None,
        "active_participants": ["a", "c"],
        "total_joins": 4,
        "unique_participants": 3,
        "peak_concurrency": 3,
        "recordings": {"rec-1": "ended"},
    }
    assert orjson.loads(orjson.dumps(state)) == state  # what the output topic carries


def test_the_end_sends_everyone_away_and_later_joins_count_without_presence() -> None:
    record, _ = replayed([STARTED, joined("a"), joined("b"), ENDED, joined("c")])
    state = snapshot(record)
    assert state["status"] == "ended"
    assert state["ended_at"] == "2026-01-01T10:30:00.000Z"
    assert state["active_participants"] == []
    counts = (state["total_joins"], state["unique_participants"], state["peak_concurrency"])
    assert counts == (3, 3, 2)


def test_exact_duplicates_change_nothing_while_the_participant_stays() -> None:
    bodies = [STARTED, joined("a"), recording("recording:uploaded"), ENDED]
    record, changed = replayed([body for body in bodies for _ in range(2)])
    assert changed == [True, False, True, False, True, False, True, False]
    assert snapshot(record)["total_joins"] == 1
    assert snapshot(record)["recordings"] == {"rec-1": "ready"}


def test_a_retried_join_after_the_leave_is_a_return_as_in_raw_topic_order() -> None:
    record, changed = replayed([joined("a"), left("a"), joined("a"), left("a"), left("a")])
    assert changed == [True, True, True, True, False]
    state = snapshot(record)
    assert (state["total_joins"], state["peak_concurrency"], state["active_participants"]) == (
        2,
        1,
        [],
    )


def test_a_leave_before_any_join_is_held_and_the_join_closes_it() -> None:
    record, changed = replayed([left("a"), joined("a"), joined("a")])
    state = snapshot(record)
    assert changed == [True, True, True]  # the second join is a new stint: "a" was absent
    assert state["active_participants"] == ["a"]
    assert (state["total_joins"], state["unique_participants"]) == (2, 1)


def test_recording_status_only_moves_forward() -> None:
    record, changed = replayed(
        [
            recording("recording:ready"),  # another spelling of recording:uploaded
            recording("recording:ended"),
            recording("recording:started"),
        ]
    )
    assert changed == [True, False, False]
    assert snapshot(record)["recordings"] == {"rec-1": "ready"}


def test_other_spellings_and_unknown_events() -> None:
    record, changed = replayed(
        [joined("a", "participant:joined"), joined("b", "participant-joined"), {"event": "?"}]
    )
    assert changed == [True, True, False]
    assert snapshot(record)["active_participants"] == ["a", "b"]


def test_a_room_expiry_passes_through_without_state() -> None:
    body: Body = {"event": "room:expired", "room_id": ROOM, "room_type": "instant"}
    assert room_record(body) == {"event": "room:expired", "room_id": ROOM}


@pytest.mark.parametrize("seed", [3, 11])
def test_it_agrees_with_the_processor_engine_on_the_benchmark_traffic(seed: int) -> None:
    """Joins, participants, presence, live peak and status of every meeting of the
    benchmark's input, retries included, as the processor's engine counts them."""
    by_key: dict[bytes, list[tuple[int, Body]]] = defaultdict(list)
    for callback in raw_callbacks(150, now_ms=NOW_MS, seed=seed):
        body = orjson.loads(callback.body)
        if "session_id" in body:
            by_key[callback.key].append((callback.received_at_ms, body))
    assert len(by_key) == 150
    for key, deliveries in by_key.items():
        record = new_session(key.decode())
        for _, body in deliveries:
            apply_callback(record, body)
        engine = applied(deliveries)
        assert (
            record["joins"],
            len(record["participants"]),
            record["present"],
            record["peak"],
            record["status"],
        ) == (
            engine.total_joins,
            len(engine.participants),
            engine.active_count,
            engine.live_peak,
            "ended" if engine.ended_at is not None else "active",
        ), key


def test_the_state_and_the_measurement_import_without_quix_streams() -> None:
    """Quix Streams is the `bench` extra: only the peer's own process imports it."""
    probe = (
        "import sys, bench.peers.session_state, bench.peers.quix_run, bench.peers.compare; "
        "sys.exit('quixstreams' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", probe], cwd=root, check=True, timeout=60)
