"""``meetings-tail TOPIC``: follow any pipeline topic, one readable line per record.

Reads ``read_committed``, like every downstream consumer, so aborted transactions never show.
It joins no consumer group and commits nothing: watching a topic changes nothing for anyone.

Exit status: 0 when stopped by ``--max``, ``--timeout``, Ctrl-C or SIGTERM; 1 when Kafka cannot be
reached, or ``--timeout`` passes before ``--max`` records arrived; 2 for a bad topic name or a
topic that does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from schemas.topics import DLQ, SESSIONS
from servicekit.signals import stop_on_signals
from tools.tail.lines import LineFormat, Record

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
_LEGAL_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_POLL_S = 0.5
"""Longest wait per fetch, so ``--timeout`` is honoured promptly."""


class TailError(Exception):
    """A problem to report in one line, with the exit status it deserves."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class TailOptions:
    topic: str
    bootstrap: str
    from_end: bool = False
    json: bool = False
    full_ids: bool = False
    max_records: int | None = None
    timeout_s: float | None = None


async def tail(options: TailOptions, out: TextIO, stop: asyncio.Event | None = None) -> int:
    """Write the topic's records to ``out`` until a limit is reached or ``stop`` is set; the
    exit status."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=options.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="latest" if options.from_end else "earliest",
        client_id="meetings-tail",
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise TailError(f"cannot reach Kafka at {options.bootstrap}: {exc}", 1) from exc
    try:
        # Checked before subscribing: asking for a missing topic's metadata could auto-create it.
        topics = await consumer.topics()
        if options.topic not in topics:
            raise TailError(_missing(options.topic, topics), 2)
        consumer.subscribe([options.topic])
        return await _follow(consumer, options, out, stop or asyncio.Event())
    finally:
        await consumer.stop()


async def _follow(
    consumer: AIOKafkaConsumer, options: TailOptions, out: TextIO, stop: asyncio.Event
) -> int:
    render = LineFormat(full_ids=options.full_ids).line
    deadline = None if options.timeout_s is None else time.monotonic() + options.timeout_s
    shown = 0
    while options.max_records is None or shown < options.max_records:
        wait = _POLL_S if deadline is None else min(deadline - time.monotonic(), _POLL_S)
        if wait <= 0:
            return 1 if options.max_records is not None else 0
        if stop.is_set():
            return 0
        batches = await consumer.getmany(timeout_ms=int(wait * 1000))
        records: list[Record] = [record for batch in batches.values() for record in batch]
        # Partitions arrive batch by batch; time order reads best.
        records.sort(key=lambda record: record.timestamp)
        for record in records[: _left(options.max_records, shown)]:
            out.write((_json(record) if options.json else render(record)) + "\n")
            shown += 1
        out.flush()
    return 0


def _left(max_records: int | None, shown: int) -> int | None:
    return None if max_records is None else max_records - shown


def _json(record: Record) -> str:
    return "null" if record.value is None else record.value.decode(errors="replace")


def _missing(topic: str, topics: set[str]) -> str:
    known = sorted(name for name in topics if not name.startswith("__"))
    listed = ", ".join(known) if known else "none"
    return f"topic {topic!r} does not exist; topics: {listed}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not _LEGAL_TOPIC.match(args.topic) or args.topic in (".", ".."):
        sys.stderr.write(
            f"meetings-tail: {args.topic!r} is not a valid topic name "
            "(1-249 of letters, digits, '.', '_', '-')\n"
        )
        return 2
    options = TailOptions(
        topic=args.topic,
        bootstrap=args.bootstrap,
        from_end=args.from_end,
        json=args.json,
        full_ids=args.full_ids,
        max_records=args.max,
        timeout_s=args.timeout,
    )
    try:
        return asyncio.run(_until_signalled(options))
    except TailError as exc:
        sys.stderr.write(f"meetings-tail: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
        return 0
    except BrokenPipeError:  # `meetings-tail ... | head`
        # Python flushes stdout again at exit; point it at nothing so that is silent too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _until_signalled(options: TailOptions) -> int:
    """``tail`` to stdout; Ctrl-C or SIGTERM (how a follow normally ends) stops it cleanly."""
    stop = asyncio.Event()
    with stop_on_signals(stop):
        return await tail(options, sys.stdout, stop)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meetings-tail",
        description="Follow a pipeline topic (derived events, session state, the DLQ, raw "
        "callbacks) and print one readable line per record. Reads read_committed, joins no "
        "consumer group, commits nothing.",
    )
    parser.add_argument("topic", help=f"e.g. {SESSIONS.name}, {DLQ.name}")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP,
        help=f"Kafka brokers (default: $KAFKA_BOOTSTRAP_SERVERS, else {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument("--from-end", action="store_true", help="only records written from now on")
    parser.add_argument(
        "--json", action="store_true", help="print each record's value exactly as stored"
    )
    parser.add_argument("--full-ids", action="store_true", help="do not shorten long ids")
    parser.add_argument(
        "--max", type=_positive_int, default=None, metavar="N", help="stop after N records"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (exit 1 if --max records had not arrived by then)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
