"""Hypothesis strategies for generated meetings and the ways they can be delivered.

A meeting is what Vonage would send for one session, in the order ingest received it: the session
starts, participants join at increasing times and usually leave, recordings go through some of
their stages, the session ends. Deliveries then duplicate (Vonage retries, received later) and
shuffle it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from schemas.callbacks import (
    ParticipantJoinedCallback,
    ParticipantJoinedHyphenCallback,
    ParticipantJoinedShortCallback,
    ParticipantLeftCallback,
    ParticipantLeftHyphenCallback,
    ParticipantLeftShortCallback,
    RecordingReadyAliasCallback,
    RecordingReadyCallback,
)
from tests.processor.builders import (
    Delivery,
    joined,
    left,
    recording_ended,
    recording_ready,
    recording_started,
    session_ended,
    session_started,
)

MINUTE = 60_000
JOIN_SPELLINGS: list[type[ParticipantJoinedCallback]] = [
    ParticipantJoinedCallback,
    ParticipantJoinedShortCallback,
    ParticipantJoinedHyphenCallback,
]
LEFT_SPELLINGS: list[type[ParticipantLeftCallback]] = [
    ParticipantLeftCallback,
    ParticipantLeftShortCallback,
    ParticipantLeftHyphenCallback,
]
READY_SPELLINGS: list[type[RecordingReadyCallback]] = [
    RecordingReadyCallback,
    RecordingReadyAliasCallback,
]

clock_skews = st.integers(min_value=-2_000, max_value=2_000)
"""Ingest's clock against Vonage's, in ms."""


@st.composite
def meetings(draw: st.DrawFn) -> list[Delivery]:
    """One session's callbacks, in receive order. Times are ms after ``T0``.

    Participants come and go in stints: each joins, usually leaves, and may come back.
    """
    started = draw(st.integers(min_value=0, max_value=MINUTE))
    deliveries: list[Delivery] = []
    if draw(st.integers(min_value=0, max_value=4)):  # now and then session:started is lost
        deliveries.append(session_started(started, received=started + abs(draw(clock_skews))))
    latest = started
    first_join = started + draw(clock_skews)
    for number in range(draw(st.integers(min_value=0, max_value=6))):
        participant_id = f"participant-{number}"
        first_join += draw(st.integers(min_value=0, max_value=5 * MINUTE))
        moment = first_join
        stints = draw(st.integers(min_value=1, max_value=3))
        for stint in range(stints):
            deliveries.append(
                joined(
                    participant_id,
                    moment,
                    is_host=number == 0,
                    spelling=draw(st.sampled_from(JOIN_SPELLINGS)),
                )
            )
            latest = max(latest, moment)
            # usually leaves before the end; always before coming back
            if stint == stints - 1 and not draw(st.integers(min_value=0, max_value=4)):
                break
            moment += draw(st.integers(min_value=0, max_value=30 * MINUTE))
            deliveries.append(
                left(participant_id, moment, spelling=draw(st.sampled_from(LEFT_SPELLINGS)))
            )
            latest = max(latest, moment)
            moment += draw(st.integers(min_value=0, max_value=5 * MINUTE))
    for number in range(draw(st.integers(min_value=0, max_value=2))):
        recording_id = f"recording-{number}"
        recording_start = started + draw(st.integers(min_value=0, max_value=10 * MINUTE))
        recording_end = recording_start + draw(st.integers(min_value=0, max_value=20 * MINUTE))
        # Vonage's start differs from the receive time, never past its own end.
        vonage_start = min(recording_start + draw(clock_skews), recording_end)
        deliveries.append(recording_started(recording_id, recording_start))
        stages = draw(st.sampled_from(["started", "ended", "ready", "ended+ready"]))
        if "ended" in stages:
            deliveries.append(
                recording_ended(
                    recording_id, vonage_start, recording_end, received=recording_end + 100
                )
            )
        if "ready" in stages:
            upload_time = recording_end + draw(st.integers(min_value=1_000, max_value=MINUTE))
            deliveries.append(
                recording_ready(
                    recording_id,
                    vonage_start,
                    recording_end,
                    received=upload_time,
                    spelling=draw(st.sampled_from(READY_SPELLINGS)),
                )
            )
        latest = max(latest, recording_end)
    # The end may come before the last lefts were received (Vonage's clock, or a late left).
    ended = max(started, latest + draw(st.integers(min_value=-10_000, max_value=MINUTE)))
    deliveries.append(session_ended(started, ended, received=ended + abs(draw(clock_skews))))
    deliveries.sort(key=lambda delivery: delivery[1])  # stable: a left before its rejoin
    return deliveries


def participant_of(delivery: Delivery) -> str | None:
    callback, _ = delivery
    if isinstance(callback, ParticipantJoinedCallback | ParticipantLeftCallback):
        return callback.participant_id
    return None


@st.composite
def shuffles_keeping_each_participant_in_order(
    draw: st.DrawFn, meeting: list[Delivery]
) -> list[Delivery]:
    """The meeting in any order that keeps each participant's own joins and lefts in order
    (so no participant's join passes its later left): every other callback goes anywhere."""
    shuffled = draw(st.permutations(meeting))
    own: dict[str, list[Delivery]] = {}
    for delivery in meeting:
        participant_id = participant_of(delivery)
        if participant_id is not None:
            own.setdefault(participant_id, []).append(delivery)
    taken = {participant_id: 0 for participant_id in own}
    result = []
    for delivery in shuffled:
        participant_id = participant_of(delivery)
        if participant_id is None:
            result.append(delivery)
        else:  # this participant's next callback takes the slot
            result.append(own[participant_id][taken[participant_id]])
            taken[participant_id] += 1
    return result


@st.composite
def redeliveries(draw: st.DrawFn, meeting: list[Delivery]) -> list[Delivery]:
    """The meeting with any callbacks retried (received again, later) and in any order."""
    retried = draw(
        st.lists(
            st.tuples(st.sampled_from(meeting), st.integers(min_value=0, max_value=10 * MINUTE)),
            max_size=len(meeting),
        )
    )
    retries = [(callback, received + delay) for (callback, received), delay in retried]
    return draw(st.permutations(meeting + retries))


meetings_and_redeliveries = meetings().flatmap(
    lambda meeting: st.tuples(st.just(meeting), redeliveries(meeting))
)
"""A meeting in receive order, and one arbitrary redelivery of it."""

meetings_and_shuffles = meetings().flatmap(
    lambda meeting: st.tuples(st.just(meeting), shuffles_keeping_each_participant_in_order(meeting))
)
"""A meeting in receive order, and one shuffle of it that keeps each participant in order."""
