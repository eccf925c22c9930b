"""One raw-topic partition's working state between commits: its sessions, and the outputs
waiting to be committed with its input offsets.

No Kafka I/O here: the runtime feeds records and clock ticks in and drains a ``Batch`` of
outputs to commit atomically. This is where the poison-message policy lives: a record that
cannot be decoded goes to the dead-letter topic with its reason and coordinates, and the
partition moves on.

A record the engine fails on half-way may have changed its session already (the engine updates
sessions in place, and copying a session per record would cost O(participants) on every record).
So the state stops taking records (``poisoned``) and the runtime rebuilds it from the last
commit and replays; the engine being deterministic, the replay reaches the same point, where
the record's offset is now known (``poison_offsets``) and it is dead-lettered without being
applied. The normal path costs one emptiness check per record.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec
from prometheus_client import Counter

from processor.engine import (
    DEFAULT_MAX_LISTED_PARTICIPANTS,
    HEADER_CHUNK,
    Session,
    apply,
    changed_records,
    changelog_key,
    expire_empty,
    expire_idle,
    release_previous,
    room_expired_event,
    settle,
    snapshot,
    tombstones,
)
from processor.metrics import DERIVED_EVENTS, DLQ_RECORDS, RECORDS, SESSIONS_EXPIRED
from processor.runtime.dlq import Headers, dead_letter_copy
from processor.sources import CallbackReader
from schemas.callbacks import RoomExpiredCallback
from schemas.codec import encode
from schemas.decoding import DecodeFailure
from schemas.events import DerivedEvent
from schemas.topics import ALL_TOPICS, HEADER_SOURCE_ROUTE, TopicNames, key_of, topic_of

logger = logging.getLogger(__name__)

PROCESSING_ERROR = "processing_error"
"""DLQ reason for a decodable callback the engine failed on (a bug; logged with a traceback)."""
EMPTY_RECORD = "empty_record"
"""DLQ reason for a raw record without a value."""

ROLL_MARKER = changelog_key("", HEADER_CHUNK, 0)
"""Key of the tombstone written to a changelog partition that went quiet, so its active segment
rolls (``roll_changelog_segment``). A tombstone of the header of the session with the empty id,
which never exists: every reader takes it for what it is, a deletion of nothing."""

EXPIRY_SLICE = 500
"""Sessions of a partition looked at per expiry check (contract §5.5). A check runs on the event
loop, and every callback in flight waits it out, so it looks at a slice rather than at every
session in memory; in slices of 500 a pass over 8,000 sessions of a partition takes 16 checks
(16 s at the default ``EXPIRY_CHECK_INTERVAL_S``), which idle timeouts of hours and retentions
of an hour do not notice."""

# Labelled metric children looked up once, not per record.
_APPLIED = RECORDS.labels(outcome="applied")
_DEAD_LETTERED = RECORDS.labels(outcome="dlq")
_IDLE_EXPIRED = SESSIONS_EXPIRED.labels(reason="idle")
_EMPTY_EXPIRED = SESSIONS_EXPIRED.labels(reason="empty")
_RETENTION_EXPIRED = SESSIONS_EXPIRED.labels(reason="retention")


@functools.cache
def _derived_counter(event_type: type[DerivedEvent]) -> Counter:
    return DERIVED_EVENTS.labels(type=str(event_type.__struct_config__.tag))


class RawRecord(Protocol):
    """The parts of an aiokafka ``ConsumerRecord`` the processor reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Output(msgspec.Struct, frozen=True, gc=False):
    """One record to produce in the partition's next commit.

    A struct outside the garbage collector's tracking (it holds bytes and strings only): one
    is made per derived event, snapshot and changelog row, and a batch of them otherwise
    triggers young-generation collections that walk the whole batch."""

    topic: str
    key: bytes | None
    value: bytes | None
    """``None`` is a tombstone (on the compacted session-state and changelog topics)."""
    partition: int | None = None
    """Explicit partition (state snapshots and changelog records: the raw partition's number),
    else the key decides."""
    headers: Headers = ()


@dataclass(slots=True)
class Batch:
    """Everything one commit makes durable for a partition, atomically in exactly-once mode."""

    outputs: list[Output] = field(default_factory=list)
    next_offset: int | None = None
    """The input offset to commit: last consumed + 1; ``None`` when no input was consumed."""
    input_records: int = 0
    writes_sessions: bool = False
    """Whether it writes session records to the changelog (not only a ``ROLL_MARKER``)."""

    @property
    def empty(self) -> bool:
        return not self.outputs and self.next_offset is None


@dataclass(frozen=True, slots=True)
class PoisonRecord:
    """A record the engine failed on: its offset and the error, for its DLQ copy."""

    offset: int
    error: str


@dataclass(frozen=True, slots=True)
class ExpiryRules:
    """When a session closes or leaves memory without a callback saying so (contract §5.5)."""

    idle_timeout_ms: int
    retention_ms: int
    empty_end_ms: int | None = None
    """The Video empty-session rule's delay; ``None``: never."""

    @property
    def quiet_ms(self) -> int:
        """How long a Meetings session can go without a callback before any rule applies to
        it (a Video one may have an earlier instance due to go at any time)."""
        return min(self.idle_timeout_ms, self.retention_ms)


class PartitionState:
    """Sessions of one raw partition and the uncommitted work on them."""

    def __init__(
        self,
        partition: int,
        topics: TopicNames,
        *,
        room_dedup_capacity: int,
        poison_offsets: dict[int, str] | None = None,
        max_listed_participants: int = DEFAULT_MAX_LISTED_PARTICIPANTS,
        reader: CallbackReader | None = None,
        expiry: ExpiryRules | None = None,
    ) -> None:
        self.partition = partition
        self._expiry = expiry
        """``None``: sessions never expire (``expire`` does nothing)."""
        self._quiet_ms = 0 if expiry is None else expiry.quiet_ms
        self._reader = CallbackReader() if reader is None else reader
        self.poison_offsets: dict[int, str] = {} if poison_offsets is None else poison_offsets
        """Offsets known to fail in the engine, with their error: dead-lettered unapplied."""
        self.poisoned: PoisonRecord | None = None
        """Set when a record failed half-way: this state must be rebuilt, not used."""
        self.stream_time_ms: int | None = None
        """The latest timestamp of the records read: the partition's clock while it has a
        backlog (contract §5.5); ``None`` until a record is read."""
        self._topics = topics
        self._max_listed = max_listed_participants
        self._topic_names = {topic: topics.of(topic) for topic in ALL_TOPICS}
        self.sessions: dict[str, Session] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of touched sessions
        self._tombstones: dict[str, Session] = {}  # dropped sessions, to tombstone
        self._batch = Batch()
        self._derived_counts: dict[type[DerivedEvent], int] = {}
        """Derived events of the batch by type, counted in the metric when it is drained (a
        labelled counter's increment takes a lock: once per type and batch, not per event)."""
        self._applied_records = 0
        """Records applied since the last drain, counted in the metric then (as above)."""
        self._expired_rooms: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._expiry_queue: list[str] = []
        """Sessions the current expiry pass has yet to look at, the next at the end."""
        self._active_in_pass = 0
        self.active_sessions = 0
        """Sessions found active by the last complete expiry pass (for the gauge)."""
        self._room_capacity = room_dedup_capacity

    # -- restore ---------------------------------------------------------------------------

    def restore(self, sessions: Iterable[Session]) -> int:
        """Load sessions read back from the changelog; returns how many."""
        restored = 0
        for session in sessions:
            self.sessions[session.session_id] = session
            restored += 1
        return restored

    # -- input -----------------------------------------------------------------------------

    @property
    def pending_records(self) -> int:
        return self._batch.input_records

    @property
    def has_pending(self) -> bool:
        return not self._batch.empty or bool(self._dirty) or bool(self._tombstones)

    def process(self, record: RawRecord) -> None:
        """Apply one raw record; its outputs join the next batch and its offset is consumed."""
        if self.poisoned is not None:
            return  # the runtime rebuilds this state and the record is read again
        self._batch.next_offset = record.offset + 1
        self._batch.input_records += 1
        now_ms = self.stream_time_ms
        if now_ms is None or record.timestamp > now_ms:
            now_ms = self.stream_time_ms = record.timestamp
        if self.poison_offsets and record.offset in self.poison_offsets:
            self._dead_letter(record, PROCESSING_ERROR, self.poison_offsets[record.offset])
            return
        if record.value is None:
            self._dead_letter(record, EMPTY_RECORD, "the raw record has no value")
            return
        read = self._reader.read(record.value, _route(record), record.timestamp)
        if isinstance(read, DecodeFailure):
            self._dead_letter(record, read.reason, read.message)
            return
        try:
            if isinstance(read, RoomExpiredCallback):
                self._room_expired(read)
            elif read:  # a callback that states no fact (a Video sessionNotification) is done
                session_id = read[0].origin.session_id
                session = self.sessions.get(session_id)
                expiry = self._expiry
                if (
                    session is not None
                    and expiry is not None
                    and (
                        session.video is not None  # an earlier instance may be due to go
                        or now_ms - session.last_received_at > self._quiet_ms
                    )
                ):
                    # What the expiry pass would have done to this session by now, before the
                    # record: when the pass ran cannot change what the record finds. Not the
                    # empty rule: it measures emptiness in event time, which only the record's
                    # facts know; it waits for the pass (contract §7.6).
                    self._housekeep(session_id, session, now_ms, expiry, empty_rule=False)
                    session = self.sessions.get(session_id)
                applied = apply(session, read, record.timestamp)
                if applied.changed:
                    self.sessions[session_id] = applied.session
                    self._dirty[session_id] = None
                self._publish(applied.events)
        except Exception as exc:
            logger.exception(
                "processing failed for %s[%d]@%d; rebuilding the partition from its last commit",
                record.topic,
                record.partition,
                record.offset,
            )
            self.poisoned = PoisonRecord(record.offset, f"{type(exc).__name__}: {exc}")
            return
        self._applied_records += 1

    def expire(self, now_ms: int, *, budget: int = EXPIRY_SLICE) -> None:
        """Close sessions idle for too long, and Video sessions empty for too long; let ended
        Video instances go and drop finished sessions past retention (tombstoned), by the
        ``ExpiryRules`` the state was made with.

        Idleness and retention are measured from the session's last receive time to ``now_ms``
        (emptiness from the event time its last connection closed), the partition's clock:
        wall-clock time once it has caught up, so they happen even when no further record
        arrives, and ``stream_time_ms`` while it has a backlog, so a replay or a restart after
        an outage never times out a session whose next callbacks are waiting.

        A record is applied only after the same rules have been applied to its session at the
        partition's stream time (``process``), so where in the stream a pass happens to run
        changes nothing a record finds: a replay derives what live processing derived.

        Each call looks at the next ``budget`` sessions of a pass over all of them
        (``EXPIRY_SLICE``); ``active_sessions`` is the count of the last complete pass.
        """
        rules = self._expiry
        if rules is None:
            return
        queue = self._expiry_queue
        if not queue:
            self.active_sessions, self._active_in_pass = self._active_in_pass, 0
            queue.extend(reversed(self.sessions))  # popped from the end: oldest first
        for _ in range(min(budget, len(queue))):
            session_id = queue.pop()
            session = self.sessions.get(session_id)
            if session is None:
                continue  # dropped since the pass began
            if self._housekeep(session_id, session, now_ms, rules):
                self._active_in_pass += 1

    def _housekeep(
        self,
        session_id: str,
        session: Session,
        now_ms: int,
        rules: ExpiryRules,
        *,
        empty_rule: bool = True,
    ) -> bool:
        """Apply the expiry and retention rules to one session at ``now_ms`` (the Video empty
        rule too, unless ``empty_rule`` is false); whether it is still active afterwards."""
        idle_ms = now_ms - session.last_received_at
        status = session.status
        previous = session.previous
        if previous is not None and now_ms - previous.last_received_at > rules.retention_ms:
            self._publish(release_previous(session).events)
            self._dirty[session_id] = None
        if status == "active":
            video = session.video
            if idle_ms > rules.idle_timeout_ms:
                applied = expire_idle(session)
                self._dirty[session_id] = None
                self._publish(applied.events)
                _IDLE_EXPIRED.inc()
            elif (
                empty_rule
                and rules.empty_end_ms is not None
                and video is not None
                and video.emptied_at is not None
                and not video.open_connections
                and now_ms - video.emptied_at > rules.empty_end_ms
            ):
                applied = expire_empty(session)
                self._dirty[session_id] = None
                self._publish(applied.events)
                _EMPTY_EXPIRED.inc()
            else:
                return True
            # Closed just now, and maybe past its retention already (a record after days).
            status = session.status
        # A timed-out session starts its retention when the timeout fired.
        keep_ms = rules.retention_ms + (rules.idle_timeout_ms if status == "timed_out" else 0)
        if session.empty_ended and rules.empty_end_ms is not None:
            keep_ms += rules.empty_end_ms  # its retention starts when the rule fired
        if idle_ms > keep_ms:
            # The summary revision still owed for late changes goes out first.
            self._publish(settle(session).events)
            del self.sessions[session_id]
            # A snapshot not yet committed is superseded: the tombstone is the latest state.
            self._dirty.pop(session_id, None)
            self._tombstones[session_id] = session
            _RETENTION_EXPIRED.inc()
        return False

    # -- output ----------------------------------------------------------------------------

    def drain(self) -> Batch:
        """The batch to commit now: outputs so far, plus for each touched session its public
        state and its changed changelog records (for each dropped one, their tombstones)."""
        batch, self._batch = self._batch, Batch()
        for event_type, count in self._derived_counts.items():
            _derived_counter(event_type).inc(count)
        self._derived_counts.clear()
        if self._applied_records:
            _APPLIED.inc(self._applied_records)
            self._applied_records = 0
        outputs = batch.outputs
        state_topic, changelog_topic = self._topics.session_state, self._topics.changelog
        # Tombstones first: a session that came back after its tombstone (a new, partial
        # session under the same id) then overwrites them, and no stale record stays behind.
        for session_id, session in self._tombstones.items():
            outputs.append(
                Output(
                    topic=state_topic, key=session_id.encode(), value=None, partition=self.partition
                )
            )
            outputs.extend(
                Output(topic=changelog_topic, key=key, value=None, partition=self.partition)
                for key, _ in tombstones(session)
            )
        for session_id in self._dirty:
            session = self.sessions[session_id]
            outputs.append(
                Output(
                    topic=state_topic,
                    key=session_id.encode(),
                    value=encode(snapshot(session, max_listed=self._max_listed)),
                    partition=self.partition,
                )
            )
            outputs.extend(
                Output(topic=changelog_topic, key=key, value=value, partition=self.partition)
                for key, value in changed_records(session)
            )
        batch.writes_sessions = bool(self._dirty or self._tombstones)
        self._dirty.clear()
        self._tombstones.clear()
        return batch

    def roll_changelog_segment(self) -> None:
        """Add a ``ROLL_MARKER`` to the next batch.

        Compaction never cleans a partition's active segment, and a segment only rolls when a
        record is appended after ``segment.ms``: a changelog partition that went quiet would keep
        its last burst of revisions uncompacted, for a restore to read, until its next write.
        The runtime calls this once ``CHANGELOG_SEGMENT_MS`` has passed since the partition's
        last session write."""
        self._batch.outputs.append(
            Output(
                topic=self._topics.changelog,
                key=ROLL_MARKER,
                value=None,
                partition=self.partition,
            )
        )

    def _publish(self, events: list[DerivedEvent]) -> None:
        counts = self._derived_counts
        for event in events:
            topic, key = self._route(event)
            self._batch.outputs.append(Output(topic=topic, key=key.encode(), value=encode(event)))
            event_type = type(event)
            counts[event_type] = counts.get(event_type, 0) + 1

    def _route(self, event: DerivedEvent) -> tuple[str, str]:
        """The topic and key of a derived event, as ``schemas.topics`` declares them."""
        return self._topic_names[topic_of(type(event))], key_of(event)

    def _room_expired(self, callback: RoomExpiredCallback) -> None:
        """Rooms have no session state; recent expiries are remembered to drop retries."""
        identity = (callback.room_id, callback.expires_at.isoformat())
        if identity in self._expired_rooms:
            self._expired_rooms.move_to_end(identity)
            return
        self._expired_rooms[identity] = None
        if len(self._expired_rooms) > self._room_capacity:
            self._expired_rooms.popitem(last=False)
        self._publish([room_expired_event(callback)])

    def _dead_letter(self, record: RawRecord, reason: str, message: str) -> None:
        logger.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            message,
        )
        value, headers = dead_letter_copy(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=record.headers,
            reason=reason,
            message=message,
        )
        self._batch.outputs.append(
            Output(topic=self._topics.dlq, key=record.key, value=value, headers=headers)
        )
        _DEAD_LETTERED.inc()
        DLQ_RECORDS.labels(reason=str(reason)).inc()


def _route(record: RawRecord) -> bytes | None:
    """The ingest route a raw record arrived on (its ``source-route`` header)."""
    for name, value in record.headers:
        if name == HEADER_SOURCE_ROUTE:
            return value
    return None
