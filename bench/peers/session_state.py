"""The per-session state a peer keeps, as plain JSON-ready values, and how a callback changes it.

Framework-free so that every peer runs the same job and the tests need no framework. The state
is what a key-value state store holds per session key (Quix Streams' store serialises it as
JSON on every write): a dict of strings, numbers and one dict of participant ids.

The rules follow the processor's (contract §5) in raw-topic order, without its derived events,
stint times and summaries:

* a join while absent starts a stint (``joins`` + 1); a join while present changes nothing, so
  a retried join changes nothing either unless the participant left in between, where it counts
  as a return, as in the processor;
* a leave while present ends the stint; a leave while absent changes nothing, except one seen
  before any join: it is held, and the first join closes it at once (a stint that leaves the
  participant absent);
* ``session:ended`` sends every present participant away; a join into an ended session counts
  as a stint that the closing ends at once;
* ``started_at``, ``ended_at`` and ``room_id`` keep the first value seen (a Vonage retry is an
  exact copy), and a recording's status only moves forward: started, ended, ready;
* ``unique_participants`` counts ids seen joining or leaving, ``peak_concurrency`` the most
  present at once as callbacks arrived.

Callbacks without a session (``room:expired``) have no state: ``room_record`` passes them on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypedDict

from schemas.callbacks import EVENT_SPELLINGS

PRESENT: Final = 1
ABSENT: Final = 0
HELD_LEFT: Final = -1
"""A leave seen before any join of that participant."""

ACTIVE: Final = "active"
ENDED: Final = "ended"

RECORDING_STAGES: Final = {"recording:started": 1, "recording:ended": 2, "recording:uploaded": 3}
"""Canonical recording callbacks by how far along the recording they say it is."""
RECORDING_STATUS: Final = {1: "started", 2: "ended", 3: "ready"}


class SessionRecord(TypedDict):
    session_id: str
    room_id: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    participants: dict[str, int]
    """Every participant id seen: ``PRESENT``, ``ABSENT`` or ``HELD_LEFT``."""
    present: int
    joins: int
    peak: int
    recordings: dict[str, int]
    """Recording id to its furthest stage (``RECORDING_STAGES``)."""


def new_session(session_id: str) -> SessionRecord:
    return SessionRecord(
        session_id=session_id,
        room_id=None,
        status=ACTIVE,
        started_at=None,
        ended_at=None,
        participants={},
        present=0,
        joins=0,
        peak=0,
        recordings={},
    )


def apply_callback(record: SessionRecord, body: Mapping[str, object]) -> bool:
    """Apply one callback of ``record``'s session to it in place; whether anything changed.

    An event this module does not know (nor ``schemas.callbacks`` accepts) changes nothing."""
    event = EVENT_SPELLINGS.get(str(body.get("event")))
    if event == "session:participant:joined":
        return _joined(record, str(body["participant_id"]))
    if event == "session:participant:left":
        return _left(record, str(body["participant_id"]))
    if event in RECORDING_STAGES:
        return _recording(record, str(body["recording_id"]), RECORDING_STAGES[event])
    changed = _first(record, body, "room_id") | _first(record, body, "started_at")
    if event == "session:ended":
        changed |= _first(record, body, "ended_at")
        if record["status"] != ENDED:
            record["status"] = ENDED
            participants = record["participants"]
            for participant_id, status in participants.items():
                if status == PRESENT:
                    participants[participant_id] = ABSENT
            record["present"] = 0
            changed = True
    return changed


def snapshot(record: SessionRecord) -> dict[str, object]:
    """The state record published for ``record`` after each callback."""
    participants = record["participants"]
    return {
        "session_id": record["session_id"],
        "room_id": record["room_id"],
        "status": record["status"],
        "started_at": record["started_at"],
        "ended_at": record["ended_at"],
        "active_participants": [p for p, status in participants.items() if status == PRESENT],
        "total_joins": record["joins"],
        "unique_participants": len(participants),
        "peak_concurrency": record["peak"],
        "recordings": {
            recording_id: RECORDING_STATUS[stage]
            for recording_id, stage in record["recordings"].items()
        },
    }


def room_record(body: Mapping[str, object]) -> dict[str, object]:
    """What a callback without a session publishes: its event and room, nothing kept."""
    return {"event": body.get("event"), "room_id": body.get("room_id")}


def _joined(record: SessionRecord, participant_id: str) -> bool:
    participants = record["participants"]
    status = participants.get(participant_id)
    if status == PRESENT:
        return False
    record["joins"] += 1
    if status == HELD_LEFT or record["status"] == ENDED:
        participants[participant_id] = ABSENT  # a stint closed as soon as it began
        return True
    participants[participant_id] = PRESENT
    present = record["present"] = record["present"] + 1
    if present > record["peak"]:
        record["peak"] = present
    return True


def _left(record: SessionRecord, participant_id: str) -> bool:
    participants = record["participants"]
    status = participants.get(participant_id)
    if status is None:
        participants[participant_id] = HELD_LEFT
        return True
    if status != PRESENT:
        return False
    participants[participant_id] = ABSENT
    record["present"] -= 1
    return True


def _recording(record: SessionRecord, recording_id: str, stage: int) -> bool:
    recordings = record["recordings"]
    if recordings.get(recording_id, 0) >= stage:
        return False
    recordings[recording_id] = stage
    return True


def _first(
    record: SessionRecord,
    body: Mapping[str, object],
    field: Literal["room_id", "started_at", "ended_at"],
) -> bool:
    """Keep ``body[field]`` unless the record has a value already."""
    value = body.get(field)
    if value is None or record[field] is not None:
        return False
    record[field] = str(value)
    return True
