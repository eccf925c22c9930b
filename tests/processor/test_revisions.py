"""Summary revisions of a closed session: when they go out, and what they carry."""

from __future__ import annotations

from processor.engine import expire_idle, settle
from processor.engine.lifecycle import REVISION_COST_PARTICIPANTS
from schemas.events import ParticipantAttendanceEvent, SessionEndedEvent
from tests.processor.builders import Delivery, joined, left, replay, session_ended, session_started

CROWD = 10 * REVISION_COST_PARTICIPANTS
"""A session whose revisions are considered every 10 late changes."""


def big_meeting() -> list[Delivery]:
    return [
        session_started(0),
        *[joined(f"p{number:04}", 1_000 + number) for number in range(CROWD)],
        session_ended(0, 100_000),
    ]


def test_each_revision_carries_one_attendance_report_per_participant_id() -> None:
    fed = replay([session_started(0), joined("a", 1_000), left("b", 2_000)])
    closing = fed.feed([session_ended(0, 10_000)])

    reports = [e for e in closing if isinstance(e, ParticipantAttendanceEvent)]
    assert [(r.participant_id, r.revision) for r in reports] == [("a", 1), ("b", 1)]
    assert {r.occurred_at for r in reports} == {closing[-3].occurred_at}


def test_late_changes_to_a_big_session_are_considered_in_batches() -> None:
    fed = replay(big_meeting())
    assert [e.summary.revision for e in fed.of_type(SessionEndedEvent)] == [1]

    published = []
    for number in range(25):  # each left shortens an attendance: every one is a change
        late = fed.feed([left(f"p{number:04}", 50_000)])
        published.append(any(isinstance(e, SessionEndedEvent) for e in late))

    assert [index for index, sent in enumerate(published) if sent] == [9, 19]
    revisions = fed.of_type(SessionEndedEvent)
    assert [e.summary.revision for e in revisions] == [1, 2, 3]
    assert len(fed.of_type(ParticipantAttendanceEvent)) == 3 * CROWD

    owed = settle(fed.current)  # the last five, before the session leaves memory
    [revision] = [e for e in owed.events if isinstance(e, SessionEndedEvent)]
    assert revision.summary.revision == 4
    # everyone from their join to the end, less the 50 s the 25 early leavers missed
    expected_ms = sum(100_000 - 1_000 - n for n in range(CROWD)) - 25 * 50_000
    assert round(revision.summary.participant_seconds * 1000) == expected_ms
    assert settle(fed.current).events == []


def test_a_small_session_publishes_each_late_change_at_once() -> None:
    fed = replay([session_started(0), joined("a", 1_000), session_ended(0, 10_000)])

    late = fed.feed([left("a", 5_000)])

    assert [type(e) for e in late] == [SessionEndedEvent, ParticipantAttendanceEvent]
    assert settle(fed.current).events == []


def test_the_real_end_of_a_timed_out_big_session_is_published_at_once() -> None:
    fed = replay([session_started(0), *[joined(f"p{n:04}", 1_000 + n) for n in range(CROWD)]])
    expire_idle(fed.current)

    real_end = fed.feed([session_ended(0, 100_000)])

    [revision] = [e for e in real_end if isinstance(e, SessionEndedEvent)]
    assert (revision.summary.ended_by, revision.summary.revision) == ("callback", 2)
