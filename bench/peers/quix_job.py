"""The processor's per-session job on Quix Streams, in a process of its own.

``python -m bench.peers.quix_job --bootstrap ... --input ... --output ... --group ...
--state-dir ... --expect N``: reads the raw topic from the beginning, keeps each session's
state (``session_state``) in Quix's RocksDB store (one value per session key, backed by its
changelog topic), and writes one JSON state record per callback, under the callback's key, to
the output topic; exactly-once, a checkpoint every 100 ms like the processor's commits. Quix's
own JSON (orjson) reads and writes the values.

Quix Streams is synchronous (confluent-kafka), hence a process rather than a task in the
benchmark's event loop. It tells its parent, on standard output, one line each:
``first <epoch ns>`` when it has processed its first record, ``all <epoch ns>`` when it has
processed ``--expect`` of them, and ``processed <count>`` when it stops. SIGTERM stops it the
Quix way (``Application.stop``: the last checkpoint commits).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Quix Streams is the `bench` extra, absent from the `make test` environment: without it the
# names below are untyped and mypy checks this module against nothing more.
from quixstreams import Application, State  # type: ignore[import-not-found, unused-ignore]
from quixstreams.models import TopicConfig  # type: ignore[import-not-found, unused-ignore]

from bench.peers.session_state import SessionRecord, apply_callback, new_session, room_record
from bench.peers.session_state import snapshot as state_of

STATE_KEY = "session"
"""The one state value of each session key."""
COMMIT_INTERVAL_S = 0.1


def update(body: dict[str, Any], state: State[Any, Any]) -> dict[str, object]:
    """One callback through its session's state; the record to publish."""
    session_id = body.get("session_id")
    if not isinstance(session_id, str):
        return room_record(body)
    record: SessionRecord | None = state.get(STATE_KEY)
    if record is None:
        record = new_session(session_id)
    if apply_callback(record, body):
        state.set(STATE_KEY, record)  # a duplicate writes nothing to the store
    return state_of(record)


@dataclass(slots=True)
class Progress:
    """Counts processed records and tells the parent of the first and the ``expect``-th."""

    expect: int
    processed: int = 0

    def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.processed += 1
        if self.processed == 1:
            _tell(f"first {time.time_ns()}")
        if self.processed == self.expect:
            _tell(f"all {time.time_ns()}")


def application(options: argparse.Namespace, progress: Progress) -> Any:
    """The Quix ``Application`` with its dataframe: input → stateful update → output."""
    app = Application(
        broker_address=options.bootstrap,
        consumer_group=options.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=options.state_dir,
        on_message_processed=progress,
        loglevel="WARNING",
    )
    raw = app.topic(options.input, value_deserializer="json", key_deserializer="bytes")
    output = app.topic(
        options.output,
        value_serializer="json",
        key_serializer="bytes",
        config=TopicConfig(
            num_partitions=options.partitions, replication_factor=options.replication
        ),
    )
    sdf = app.dataframe(raw)
    sdf = sdf.apply(update, stateful=True)
    sdf.to_topic(output)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.quix_job")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--expect", type=int, required=True, help="records the input holds")
    parser.add_argument("--partitions", type=int, required=True, help="of the output topic")
    parser.add_argument("--replication", type=int, default=1, help="of the output topic")
    options = parser.parse_args(argv)
    progress = Progress(options.expect)
    application(options, progress).run()
    _tell(f"processed {progress.processed}")
    return 0


def _tell(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
