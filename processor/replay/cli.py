"""``python -m processor replay --to-prefix PREFIX``: re-derive the live raw topic's history
into every derived topic under ``PREFIX`` (see ``processor.replay.run``), then compare it with
``meetings-diff``.

Settings come from the environment as for the service (docs/operations.md). Exit status 0 once
the replay has reached the raw topic's end as of its start (run it again to go on where it
stopped), 1 when Kafka is unreachable or the processor fails, 2 for bad settings, a refused
prefix or a topic layout that needs an operator.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping

import uvloop
from aiokafka.errors import KafkaError

from processor.provisioning import KafkaUnreachableError, TopicLayoutError
from processor.replay.run import (
    ReplayRefusedError,
    ReplayStoppedError,
    ReplaySummary,
    replay,
    replay_settings,
)
from processor.settings import ProcessorSettings, load_settings
from schemas.timestamps import parse_timestamp, to_epoch_ms
from servicekit.env import SettingsError
from servicekit.logs import configure_logging
from servicekit.signals import stop_on_signals


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        live = load_settings(environ)
        settings = replay_settings(live, args.to_prefix)
    except (SettingsError, ReplayRefusedError) as exc:
        sys.stderr.write(f"processor replay: {exc}\n")
        return 2
    configure_logging(live.log_level, live.log_format)

    def report(line: str) -> None:
        sys.stderr.write(f"processor replay: {line}\n")
        sys.stderr.flush()

    try:
        summary = uvloop.run(_until_signalled(settings, report, args.report_every, args.from_time))
    except (ReplayRefusedError, TopicLayoutError) as exc:
        sys.stderr.write(f"processor replay: {exc}\n")
        return 2
    except (KafkaUnreachableError, ReplayStoppedError, KafkaError, OSError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        sys.stderr.write(f"processor replay: {exc}{cause}\n")
        return 1
    sys.stdout.write(
        f"{summary.describe()}\n"
        f"compare: meetings-diff {live.kafka.topic_prefix} {args.to_prefix}\n"
        "go on from here, live (stop the replay first): MEETINGS_TOPIC_PREFIX="
        f"{settings.kafka.topic_prefix} PROCESSOR_RAW_TOPIC_PREFIX={settings.input_prefix} "
        f"PROCESSOR_GROUP_ID={settings.group_id}\n"
    )
    return 0


async def _until_signalled(
    settings: ProcessorSettings,
    report: Callable[[str], None],
    report_every_s: float,
    from_ms: int | None,
) -> ReplaySummary:
    """The replay; SIGTERM or Ctrl-C stops it cleanly (the processor commits and leaves)."""
    interrupt = asyncio.Event()
    with stop_on_signals(interrupt):
        return await replay(
            settings,
            report=report,
            report_every_s=report_every_s,
            interrupt=interrupt,
            from_ms=from_ms,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m processor replay",
        description="Re-derive the raw topic's history: run the processor, as a group of its "
        "own, from the start of the raw topic to its current end, writing every derived topic "
        "under PREFIX (never the live prefix). Stopped and started again, it goes on where it "
        "stopped.",
    )
    parser.add_argument(
        "--to-prefix", required=True, metavar="PREFIX", help="e.g. replay-2026-12. (with its dot)"
    )
    parser.add_argument(
        "--from-time",
        type=_epoch_ms,
        default=None,
        metavar="TIME",
        help="start a new replay at the callbacks received from TIME on (RFC 3339, e.g. "
        "2026-12-01T00:00:00Z, or epoch milliseconds); sessions begun earlier are then seen "
        "part-way",
    )
    parser.add_argument(
        "--report-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines (default 5)",
    )
    return parser


def _epoch_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return to_epoch_ms(parse_timestamp(text))
    except ValueError:  # msgspec.ValidationError is one
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an RFC 3339 time with a zone nor epoch milliseconds"
        ) from None
