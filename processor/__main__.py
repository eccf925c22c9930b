"""``python -m processor``: the stream processor; ``topics`` and ``replay`` are its one-shot
commands (``processor.provisioning.cli``, ``processor.replay``).

The service provisions the topics, then serves ``/healthz``, ``/readyz`` and ``/metrics`` and
runs the consumer group until SIGTERM/SIGINT. Settings come from the environment
(docs/operations.md); exit status 0 after a graceful stop, 1 when Kafka is unreachable or a
partition failed for good, 2 for bad settings or a topic layout that needs an operator
(contract §6).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import uvloop
from aiohttp import web

from processor.http import init_http_app
from processor.provisioning import KafkaUnreachableError, TopicLayoutError, ensure_topics
from processor.provisioning.cli import main as topics_main
from processor.replay import main as replay_main
from processor.runtime import PartitionFailedError, ProcessorService
from processor.settings import ProcessorSettings, load_settings
from servicekit.env import SettingsError
from servicekit.logs import configure_logging
from servicekit.signals import stop_on_signals

logger = logging.getLogger("processor")


async def serve(settings: ProcessorSettings) -> int:
    report = await ensure_topics(settings)
    summary, *details = report.describe()
    # Checking topics that are all in place is routine; creating some is worth a line.
    logger.log(logging.INFO if report.created else logging.DEBUG, "%s", summary)
    for line in details:
        logger.debug("%s", line)
    service = ProcessorService(settings)
    runner = web.AppRunner(init_http_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    stop = asyncio.Event()
    try:
        with stop_on_signals(stop):
            await service.run(stop)
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["topics"]:
        return topics_main(args[1:])
    if args[:1] == ["replay"]:
        return replay_main(args[1:])
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"processor: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return uvloop.run(serve(settings))
    except TopicLayoutError as exc:
        logger.error("%s", exc)
        return 2
    except KafkaUnreachableError as exc:
        logger.error("%s", exc)
        return 1
    except PartitionFailedError as exc:
        logger.error("processor exiting: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
