"""How the peer comparison judges a run (``bench.peers.quix_run``, ``bench.peers.compare``),
without a broker or Quix Streams."""

from __future__ import annotations

import orjson
import pytest

from bench.meetings import RawCallback
from bench.peers.compare import QuixComparison
from bench.peers.quix_run import PeerCrashed, expected_last

SESSION = "2_MX40NjMzOTg5Mn5-session-fg"


def raw(body: dict[str, object], key: str) -> RawCallback:
    return RawCallback(body=orjson.dumps(body), key=key.encode(), received_at_ms=0)


def test_each_key_expects_its_last_state_and_rooms_pass_through() -> None:
    person = {"session_id": SESSION, "room_id": "r", "participant_id": "a"}
    callbacks = [
        raw({"event": "session:participant:joined", **person}, SESSION),
        raw({"event": "session:participant:left", **person}, SESSION),
        raw({"event": "room:expired", "room_id": "r", "room_type": "instant"}, "r"),
    ]
    last = expected_last(callbacks)
    assert last[b"r"] == {"event": "room:expired", "room_id": "r"}
    session = last[SESSION.encode()]
    assert isinstance(session, dict)
    assert (session["total_joins"], session["active_participants"]) == (1, [])


def test_a_crash_names_its_last_words() -> None:
    crash = PeerCrashed(
        "exited with status 1", ["Traceback (most recent call last):", "KeyError: 'x'", ""]
    )
    assert crash.last_line == "KeyError: 'x'"
    assert "KeyError" in str(crash)
    assert PeerCrashed("exited before it was done", []).last_line == "exited before it was done"


def test_the_ratio_is_of_the_medians_and_meets_its_goal_at_2_5() -> None:
    result = QuixComparison(processor=10_000, quix=4_000)
    assert result.ratio == pytest.approx(2.5)
    assert result.met
    assert result.goal().met
    assert not QuixComparison(processor=9_999, quix=4_000).goal().met
