"""``meetings-diff``: two sets of derived topics compared record by record; exit 0 only when
they hold the same data, in bounded memory (passes) whatever their size."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import given
from hypothesis import strategies as st

from schemas import ParticipantJoinedEvent, SessionStartedEvent, SessionState, encode
from schemas.topics import (
    DLQ,
    HEADER_DLQ_ERROR,
    HEADER_DLQ_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    PARTICIPANTS,
    SESSION_STATE,
    SESSIONS,
    TopicContract,
)
from tests.kafka_helpers import create_topic, in_thread, unique_name
from tools.diff import main
from tools.diff.compare import (
    Entry,
    LatestStates,
    Side,
    TopicDiff,
    compare_sides,
    content_digest,
    event_identity,
    in_pass,
    plan_passes,
)

# -- the comparison, without Kafka ---------------------------------------------------------


def side(*entries: tuple[str, str, bytes]) -> Side:
    built = Side()
    for ident, type_name, digest in entries:
        built.add(ident, Entry(type_name, digest))
    return built


def test_events_are_matched_by_id_then_compared_by_content() -> None:
    a = side(("e1", "t", b"1"), ("e2", "t", b"2"), ("e3", "t", b"3"), ("e3", "t", b"3"))
    b = side(("e1", "t", b"1"), ("e2", "t", b"changed"), ("e4", "u", b"4"))
    outcome = TopicDiff("x")
    compare_sides(a, b, outcome)
    t, u = outcome.types["t"], outcome.types["u"]
    assert (t.matching, t.differing, t.only_a, t.only_b, t.duplicated_a) == (1, 1, 1, 0, 1)
    assert (u.only_b, u.differences) == (1, 1)
    assert t.examples == {"differing": ["e2"], "only in A": ["e3"]}
    assert outcome.differences == 4


def test_content_is_the_data_not_its_spelling() -> None:
    assert content_digest(b"k", b'{"a": 1, "b": [1, 2]}') == content_digest(
        b"k", b'{"b":[1,2],"a":1}'
    )
    assert content_digest(b"k", b'{"a":1}') != content_digest(b"k", b'{"a":2}')
    assert content_digest(b"k", b'{"a":1}') != content_digest(b"other", b'{"a":1}')
    assert content_digest(None, b"not json") != content_digest(None, b"not json!")


def test_the_latest_state_of_each_session_counts_and_a_tombstone_removes_it() -> None:
    states = LatestStates()
    for key, value in [
        (b"s1", b'{"version":1}'),
        (b"s2", b'{"version":1}'),
        (b"s1", b'{"version":2}'),
        (b"s2", None),
    ]:
        states.add(key, value)
    latest = states.side()
    assert list(latest.entries) == ["s1"]
    assert latest.entries["s1"].digest == content_digest(None, b'{"version":2}')


@given(st.lists(st.text(max_size=12), unique=True), st.integers(1, 40), st.integers(1, 7))
def test_passes_split_the_ids_without_losing_or_repeating_one(
    ids: list[str], records: int, max_entries: int
) -> None:
    passes = plan_passes(records, max_entries)
    assert passes * max_entries >= records
    placed = [[n for n in range(passes) if in_pass(ident, n, passes)] for ident in ids]
    assert all(len(numbers) == 1 for numbers in placed)


# -- against a real broker -----------------------------------------------------------------

SESSION = "2_MX40-diff"
STARTED = SessionStartedEvent(
    event_id="started-1",
    occurred_at="2026-12-07T10:00:00.000Z",
    session_id=SESSION,
    room_id="room-1",
    started_at="2026-12-07T10:00:00.000Z",
)


def joined(number: int, name: str = "Ada") -> ParticipantJoinedEvent:
    return ParticipantJoinedEvent(
        event_id=f"joined-{number}",
        occurred_at="2026-12-07T10:01:00.000Z",
        session_id=SESSION,
        room_id="room-1",
        participant_id=f"p-{number}",
        name=name,
        is_host=False,
        joined_at="2026-12-07T10:01:00.000Z",
    )


def state(active: int) -> SessionState:
    return msgspec.convert(
        {
            "session_id": SESSION,
            "room_id": "room-1",
            "status": "active",
            "started_at": "2026-12-07T10:00:00.000Z",
            "ended_at": None,
            "duration_s": None,
            "active_participants": [],
            "active_count": active,
            "peak_concurrency": active,
            "unique_participants": active,
            "total_joins": active,
            "recordings": [],
            "recording_active": False,
            "last_event_at": "2026-12-07T10:01:00.000Z",
            "version": active,
        },
        SessionState,
    )


Produced = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def dead_letter(offset: int, reason: bytes) -> Produced:
    headers = [
        (HEADER_DLQ_REASON, reason),
        (HEADER_DLQ_ERROR, b"Expected `object`, got `int`"),
        (HEADER_SOURCE_PARTITION, b"0"),
        (HEADER_SOURCE_OFFSET, str(offset).encode()),
    ]
    return SESSION.encode(), b"42", headers


def derived(records: Sequence[msgspec.Struct]) -> list[Produced]:
    return [(SESSION.encode(), encode(record), []) for record in records]


LIVE: dict[TopicContract, list[Produced]] = {
    SESSIONS: derived([STARTED]),
    PARTICIPANTS: derived([joined(n) for n in range(30)]),
    SESSION_STATE: derived([state(1), state(30)]),
    DLQ: [dead_letter(7, b"undecodable")],
}


async def publish(bootstrap: str, prefix: str, topics: dict[TopicContract, list[Produced]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for contract, records in topics.items():
            for key, value, headers in records:
                await producer.send_and_wait(
                    contract.name_under(prefix), value, key=key, headers=headers
                )
    finally:
        await producer.stop()


async def provisioned(bootstrap: str, name: str) -> str:
    prefix = unique_name(name) + "."
    for contract in LIVE:
        await create_topic(bootstrap, contract.name_under(prefix), partitions=3)
    return prefix


async def diff(bootstrap: str, *args: str) -> tuple[int, str]:
    """``meetings-diff`` in a thread, its status and stdout."""
    status, out, _ = await in_thread(main, [*args, "--bootstrap", bootstrap], {})
    return status, out


@pytest.fixture
async def live_and_replay(kafka_bootstrap: str) -> tuple[str, str]:
    a, b = await provisioned(kafka_bootstrap, "live"), await provisioned(kafka_bootstrap, "replay")
    await publish(kafka_bootstrap, a, LIVE)
    await publish(
        kafka_bootstrap,
        b,
        {c: list(reversed(r)) if c is PARTICIPANTS else r for c, r in LIVE.items()},
    )
    return a, b


async def test_the_same_data_is_identical_in_any_order(
    kafka_bootstrap: str, live_and_replay: tuple[str, str]
) -> None:
    status, out = await diff(kafka_bootstrap, *live_and_replay)
    assert status == 0, out
    assert out.rstrip().endswith("identical")
    assert "participants: records A 30, B 30" in out
    assert "recordings" not in out  # under neither prefix: skipped


async def test_each_difference_is_counted_per_type_with_examples(kafka_bootstrap: str) -> None:
    a, b = await provisioned(kafka_bootstrap, "live"), await provisioned(kafka_bootstrap, "other")
    await publish(kafka_bootstrap, a, LIVE)
    changed = [joined(n, name="Grace") if n == 3 else joined(n) for n in range(30)]
    await publish(
        kafka_bootstrap,
        b,
        {
            SESSIONS: LIVE[SESSIONS],
            PARTICIPANTS: derived([*changed, joined(99), joined(5)]),
            SESSION_STATE: derived([state(1), state(29)]),
            DLQ: [*LIVE[DLQ], dead_letter(8, b"invalid")],
        },
    )
    for max_entries in ("1000", "4"):  # one pass, then several: the same outcome
        status, out = await diff(kafka_bootstrap, a, b, "--max-entries", max_entries)
        assert status == 1, out
        rows = dict(_table_rows(out))
        #                                    matching only A only B differing dup. A dup. B
        assert rows["participant.joined"] == [29, 0, 1, 1, 0, 1], out
        assert rows["SessionState"] == [0, 0, 0, 1, 0, 0], out
        assert rows["dlq: invalid"] == [0, 0, 1, 0, 0, 0], out
        assert rows["dlq: undecodable"] == [1, 0, 0, 0, 0, 0], out
        assert rows["session.started"] == [1, 0, 0, 0, 0, 0], out
        assert "participant.joined differing: joined-3" in out
        assert "participant.joined only in B: joined-99" in out
        assert out.rstrip().endswith("5 differences")


def _table_rows(out: str) -> Iterator[tuple[str, list[int]]]:
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 7 and all(p.replace(",", "").isdigit() for p in parts[-6:]):
            yield " ".join(parts[:-6]), [int(p.replace(",", "")) for p in parts[-6:]]


async def test_a_topic_under_one_prefix_only_cannot_be_compared(
    kafka_bootstrap: str, live_and_replay: tuple[str, str]
) -> None:
    a, _ = live_and_replay
    lonely = unique_name("lonely") + "."
    await create_topic(kafka_bootstrap, SESSIONS.name_under(lonely), partitions=1)
    status, _ = await diff(kafka_bootstrap, a, lonely)
    assert status == 2


def test_unreadable_values_are_matched_only_by_identical_bytes() -> None:
    assert event_identity(b"junk") == event_identity(b"junk")
    assert event_identity(b"junk") != event_identity(b"junk2")
    assert event_identity(orjson.dumps({"type": "x", "event_id": "e"})) == ("e", "x")


async def test_kafka_out_of_reach_is_exit_2_naming_it() -> None:
    status, _, errors = await in_thread(
        main, ["a.", "b.", "--bootstrap", "127.0.0.1:1"], {}, within=60
    )
    assert status == 2
    assert "cannot read from Kafka at 127.0.0.1:1" in errors
