"""Recording stages: started, paused (and resumed), ended, ready, failed, expired.

Stages arrive in any order. Each stage's event goes out when that stage is first seen; the
recording's status is the furthest stage seen. Times and duration come from the platform's own
fields when a callback carries them (``ended``/``ready`` on Meetings, ``createdAt`` and
``duration`` on Video), never from a receive time when the platform's is known. A later copy of
a stage already seen is a retry and changes nothing, except where it adds what was unknown.

Video archives pause and resume: a ``started`` after the first is a resumption (its own event,
its id carrying its time, so a retry of it is recognised), and ``uploaded`` may precede
``stopped``: a ready recording has ended (``RecordingChanged.ready_ends``), so the recording
ends once whatever the order and the ``stopped`` that follows only adds its reason.
"""

from __future__ import annotations

from processor.engine import derived
from processor.engine.facts import RecordingChanged, Stage
from processor.engine.session import RecordingFacts, Session
from schemas.events import DerivedEvent


def record_recording(session: Session, fact: RecordingChanged, events: list[DerivedEvent]) -> bool:
    recording = session.find_recording(fact.recording_id)
    if recording is None:
        recording = RecordingFacts(recording_id=fact.recording_id)
        session.add_recording(recording)
    if (
        fact.cycles
        and fact.started_at is not None
        and (recording.started_at is None or fact.started_at < recording.started_at)
    ):
        recording.started_at = fact.started_at  # Video: every status carries createdAt
    match fact.stage:
        case Stage.STARTED:
            return _started(session, recording, fact, events)
        case Stage.PAUSED:
            return _paused(session, recording, fact, events)
        case Stage.ENDED:
            return _ended(session, recording, fact, events)
        case Stage.READY:
            return _ready(session, recording, fact, events)
        case Stage.FAILED:
            if recording.failed_at is not None:
                return False
            archive = recording.archive_part()
            archive.failed_at = fact.at
            archive.reason = fact.reason
            events.append(derived.recording_failed(session, recording, at=fact.at))
            return True
        case Stage.EXPIRED:
            if recording.expired_at is not None:
                return False
            recording.archive_part().expired_at = fact.at
            events.append(derived.recording_expired(session, recording, at=fact.at))
            return True


def _started(
    session: Session, recording: RecordingFacts, fact: RecordingChanged, events: list[DerivedEvent]
) -> bool:
    at = fact.at
    first = recording.started_received_at
    if first is None:
        recording.started_received_at = at
        started_at = recording.started_at if recording.started_at is not None else at
        events.append(derived.recording_started(session, recording, started_at=started_at))
        return True
    if fact.cycles and at > first:
        # Video: a later start resumes a pause (ordered by event time, not arrival).
        archive = recording.archive_part()
        resumed = archive.resumed if archive.resumed is not None else []
        if at in resumed:
            return False
        archive.resumed = [*resumed, at]
        events.append(derived.recording_resumed(session, recording, at=at))
        return True
    if first <= at:
        return False  # a retry
    recording.started_received_at = at  # an earlier copy: the start was earlier
    return True


def _paused(
    session: Session, recording: RecordingFacts, fact: RecordingChanged, events: list[DerivedEvent]
) -> bool:
    archive = recording.archive_part()
    paused = archive.paused if archive.paused is not None else []
    if fact.at in paused:
        return False
    archive.paused = [*paused, fact.at]
    events.append(derived.recording_paused(session, recording, at=fact.at))
    return True


def _ended(
    session: Session, recording: RecordingFacts, fact: RecordingChanged, events: list[DerivedEvent]
) -> bool:
    if recording.ended_seen:
        if recording.reason is None and fact.reason:
            recording.archive_part().reason = fact.reason  # a stop after its ready: news
            return True
        return False
    recording.ended_seen = True
    if fact.reason:
        recording.archive_part().reason = fact.reason
    if not recording.ready_seen:  # ready is the later, final word on times and duration
        _take_times(recording, fact)
    events.append(derived.recording_ended(session, recording, *_times(recording, fact)))
    return True


def _ready(
    session: Session, recording: RecordingFacts, fact: RecordingChanged, events: list[DerivedEvent]
) -> bool:
    if recording.ready_seen:
        return False
    recording.ready_seen = True
    _take_times(recording, fact)
    recording.url = fact.url
    if fact.storage is not None or fact.size_bytes is not None or fact.output_mode is not None:
        archive = recording.archive_part()
        archive.storage = fact.storage
        archive.url_expires_at = fact.url_expires_at
        archive.size_bytes = fact.size_bytes
        archive.output_mode = fact.output_mode
    times = _times(recording, fact)
    if fact.ready_ends and not recording.ended_seen:
        recording.ended_seen = True
        events.append(derived.recording_ended(session, recording, *times))
    events.append(derived.recording_ready(session, recording, *times))
    return True


def _take_times(recording: RecordingFacts, fact: RecordingChanged) -> None:
    if fact.started_at is not None and not fact.cycles:
        recording.started_at = fact.started_at
    recording.ended_at = fact.ended_at if fact.ended_at is not None else fact.at
    if fact.duration_s is not None:
        recording.duration_s = fact.duration_s
    elif recording.duration_s is None:
        start = recording.effective_started_at
        if start is not None:
            recording.duration_s = max(0, recording.ended_at - start) / 1000


def _times(recording: RecordingFacts, fact: RecordingChanged) -> tuple[int, int, float]:
    """Start, end and duration of the recording as this stop or ready callback tells them."""
    ended_at = fact.ended_at if fact.ended_at is not None else fact.at
    started_at = fact.started_at if fact.started_at is not None else recording.effective_started_at
    if started_at is None:
        started_at = ended_at
    duration_s = fact.duration_s
    if duration_s is None:
        duration_s = max(0, ended_at - started_at) / 1000
    return started_at, ended_at, duration_s
