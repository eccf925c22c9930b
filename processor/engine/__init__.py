"""The processor's pure state engine: facts in, session state and derived events out.

Facts (``facts``) are what the sources' adapters (``processor.sources``) make of callbacks,
whatever the platform. No I/O, no clock reads, no Kafka: the runtime around it passes each
record's receive time, decides when a session is idle, publishes ``Applied.events`` and
``snapshot(session)``, writes ``changed_records(session)`` to the internal changelog and restores
sessions from it with ``restore_sessions``.

Design (contract §5): participants follow the stint rules in raw-topic order; session and recording
facts are combined so that duplicates and reordering converge (see ``session``); every published
value derives from the facts alone, and every aggregate a snapshot needs is kept incrementally.
Each derived event goes out exactly once, when the fact that triggers it first appears, except
``session.ended`` and its ``participant.attendance`` reports, re-published with a higher revision
when late callbacks change them (``lifecycle.revise_summary``).
"""

from processor.engine.apply import (
    Applied,
    apply,
    expire_empty,
    expire_idle,
    release_previous,
    settle,
)
from processor.engine.changelog import (
    HEADER_CHUNK,
    ChangelogError,
    all_records,
    changed_records,
    changelog_key,
    overlaid,
    restore_sessions,
    session_of_key,
    tombstones,
)
from processor.engine.derived import room_expired_event
from processor.engine.ids import event_id
from processor.engine.session import Participant, RecordingFacts, Session
from processor.engine.snapshot import DEFAULT_MAX_LISTED_PARTICIPANTS, snapshot

__all__ = [
    "DEFAULT_MAX_LISTED_PARTICIPANTS",
    "HEADER_CHUNK",
    "Applied",
    "ChangelogError",
    "Participant",
    "RecordingFacts",
    "Session",
    "all_records",
    "apply",
    "changed_records",
    "changelog_key",
    "event_id",
    "expire_empty",
    "expire_idle",
    "overlaid",
    "release_previous",
    "restore_sessions",
    "room_expired_event",
    "session_of_key",
    "settle",
    "snapshot",
    "tombstones",
]
