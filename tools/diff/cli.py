"""``meetings-diff PREFIX_A PREFIX_B``: do two sets of derived topics hold the same data?

Compares each derived topic of contract §4 under ``PREFIX_A`` with the same topic under
``PREFIX_B`` (``tools.diff.compare`` says how records are matched), prints per event type how
many match, exist on one side only or differ, with a few ids of each, and exits 0 only when
nothing differs: 1 when something does, 2 when the comparison cannot be made (bad arguments,
Kafka unreachable, a topic under one prefix only). Reads ``read_committed``, joins no group,
commits nothing; Kafka settings come from the environment as for the services (``KAFKA_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Mapping
from typing import TextIO

from aiokafka.errors import KafkaError

from servicekit.env import SettingsError
from servicekit.kafka import KafkaSettings, kafka_problems
from servicekit.settings import load
from tools.diff.compare import TopicDiff
from tools.diff.reading import TopicReader
from tools.diff.run import MissingTopicError, Prefixes, compare_prefixes

DEFAULT_MAX_ENTRIES = 1_000_000
"""Ids held per side and pass (a few hundred bytes each): larger topics take more passes."""


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        kafka = load(KafkaSettings, environ, what="meetings-diff", checks=kafka_problems)
    except SettingsError as exc:
        sys.stderr.write(f"meetings-diff: {exc}\n")
        return 2
    if args.bootstrap:
        kafka = dataclasses.replace(kafka, bootstrap_servers=args.bootstrap)
    prefixes = Prefixes(args.prefix_a, args.prefix_b)
    try:
        outcomes = asyncio.run(_compare(kafka, prefixes, args.max_entries))
    except MissingTopicError as exc:
        sys.stderr.write(f"meetings-diff: {exc}\n")
        return 2
    except (KafkaError, OSError) as exc:
        sys.stderr.write(
            f"meetings-diff: cannot read from Kafka at {kafka.bootstrap_servers}: {exc}\n"
        )
        return 2
    return report(outcomes, prefixes, sys.stdout)


async def _compare(kafka: KafkaSettings, prefixes: Prefixes, max_entries: int) -> list[TopicDiff]:
    def say(line: str) -> None:
        sys.stderr.write(f"meetings-diff: {line}\n")
        sys.stderr.flush()

    async with TopicReader(kafka) as reader:
        return await compare_prefixes(reader, prefixes, max_entries=max_entries, say=say)


_COLUMNS = ("matching", "only A", "only B", "differing", "dup. A", "dup. B")


def report(outcomes: list[TopicDiff], prefixes: Prefixes, out: TextIO) -> int:
    """Print the comparison; the exit status (0: identical, 1: some difference)."""
    out.write(f"A = {prefixes.a}*    B = {prefixes.b}*\n")
    for topic in outcomes:
        out.write(f"\n{topic.suffix}: records A {topic.records_a:,}, B {topic.records_b:,}\n")
        if not topic.types:
            out.write("  (empty on both sides)\n")
            continue
        width = max(len(name) for name in topic.types) + 2
        out.write(f"  {'type':<{width}}" + "".join(f"{c:>11}" for c in _COLUMNS) + "\n")
        for name, diff in sorted(topic.types.items()):
            counts = (
                diff.matching,
                diff.only_a,
                diff.only_b,
                diff.differing,
                diff.duplicated_a,
                diff.duplicated_b,
            )
            out.write(f"  {name:<{width}}" + "".join(f"{n:>11,}" for n in counts) + "\n")
        for name, diff in sorted(topic.types.items()):
            for kind, ids in diff.examples.items():
                out.write(f"    {name} {kind}: {', '.join(ids)}\n")
    differences = sum(topic.differences for topic in outcomes)
    if differences:
        out.write(f"\n{differences:,} differences\n")
        return 1
    out.write("\nidentical\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meetings-diff",
        description="Compare the derived topics under two prefixes (e.g. the live topics and a "
        "replay's): events by event_id and content, the latest SessionState of each session, "
        "dead letters by their raw record. Exit 0 when they match, 1 when they differ, 2 when "
        "they cannot be compared.",
    )
    parser.add_argument("prefix_a", metavar="PREFIX_A", help="e.g. meetings.")
    parser.add_argument("prefix_b", metavar="PREFIX_B", help="e.g. replay-2026-12.")
    parser.add_argument(
        "--bootstrap", default=None, help="Kafka brokers (default: $KAFKA_BOOTSTRAP_SERVERS)"
    )
    parser.add_argument(
        "--max-entries",
        type=_positive_int,
        default=DEFAULT_MAX_ENTRIES,
        metavar="N",
        help=f"ids held per side at once; a larger topic is read in several passes "
        f"(default {DEFAULT_MAX_ENTRIES:,})",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value
