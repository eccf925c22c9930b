"""The processor's pure state engine: callbacks in, session facts and derived events out.

No I/O, no clock reads, no Kafka: the runtime around it passes each record's receive time,
decides when a session is idle, publishes ``Applied.events`` and ``snapshot(session)``, and
restores sessions from the session-state topic with ``restore``.

Design (SPEC §5): the engine keeps per-session *facts*, each combined so that duplicates and
reordering converge (see ``session``), and derives every published value from the facts alone;
each derived event goes out exactly once, when the fact that triggers it first appears, except
``session.ended``, re-published with a higher revision whenever a late callback changes the
summary.
"""

from processor.engine.apply import Applied, SessionCallback, apply, event_time_ms, expire_idle
from processor.engine.derived import room_expired_event
from processor.engine.ids import event_id
from processor.engine.session import ParticipantFacts, RecordingFacts, Session
from processor.engine.snapshot import restore, snapshot

__all__ = [
    "Applied",
    "ParticipantFacts",
    "RecordingFacts",
    "Session",
    "SessionCallback",
    "apply",
    "event_id",
    "event_time_ms",
    "expire_idle",
    "restore",
    "room_expired_event",
    "snapshot",
]
