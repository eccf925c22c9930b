"""``python -m processor topics``: create or check the topics, print what was done."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

from processor.provisioning import (
    DEFAULT_TIMEOUT_S,
    KafkaUnreachableError,
    TopicLayoutError,
    ensure_topics,
)
from processor.settings import load_settings
from servicekit.env import SettingsError
from servicekit.logs import configure_logging


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``python -m processor topics``: create or check the topics, print what was done.

    Exit status 0 when the topics are in place, 1 when Kafka is unreachable, 2 for bad settings
    or a topic layout that needs an operator.
    """
    parser = argparse.ArgumentParser(
        prog="python -m processor topics",
        description="Create the missing contract §4 topics and check the existing ones "
        "(settings from the environment, see docs/operations.md).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for Kafka (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        sys.stderr.write(f"processor topics: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        report = asyncio.run(ensure_topics(settings, timeout_s=args.timeout))
    except TopicLayoutError as exc:
        sys.stderr.write(f"processor topics: {exc}\n")
        return 2
    except KafkaUnreachableError as exc:
        sys.stderr.write(f"processor topics: {exc}\n")
        return 1
    sys.stdout.write("".join(f"{line}\n" for line in report.describe()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
