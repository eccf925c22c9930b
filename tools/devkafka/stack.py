"""``make run``: the whole pipeline on this machine, in the foreground.

A real Apache Kafka (the embedded broker, or with ``--brokers 3`` a three-node cluster, unless
``KAFKA_BOOTSTRAP_SERVERS`` names a cluster), the topics (replicated to every node of the embedded
cluster), ingest on ``127.0.0.1:8080`` and one processor. Ctrl-C (or SIGTERM) stops the
services first, so they drain and commit, then the broker; nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas.topics import SESSIONS
from servicekit.logs import LogFormat, configure_logging
from tools.devkafka.broker import EmbeddedKafka
from tools.devkafka.cluster import EmbeddedKafkaCluster
from tools.devkafka.errors import BrokerError

logger = logging.getLogger("stack")

_STOP_TIMEOUT_S = 45.0
_READY_TIMEOUT_S = 90.0
_EXAMPLE_CALLBACK = (
    '{"event":"session:started","session_id":"s-1","room_id":"r-1",'
    '"started_at":"2021-11-02T15:53:28.753Z"}'
)
_EXAMPLE_VIDEO_CALLBACK = (  # Vonage's documented connectionCreated example
    '{"sessionId":"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr","projectId":"123456",'
    '"event":"connectionCreated","timestamp":1470257688309,"connection":{"id":'
    '"c053fcc8-c681-41d5-8ec2-7a9e1434a21e","createdAt":1470257688143,"data":"TOKENDATA"}}'
)


@contextmanager
def kafka(port: int, data_dir: Path | None, brokers: int) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        logger.info("using the Kafka cluster at %s (KAFKA_BOOTSTRAP_SERVERS)", external)
        yield external
        return
    broker: EmbeddedKafka | EmbeddedKafkaCluster = (
        EmbeddedKafka(port=port, workdir=data_dir)
        if brokers == 1
        else EmbeddedKafkaCluster(brokers, workdir=data_dir, first_port=port)
    )
    with broker:
        logger.info(
            "Apache Kafka %s at %s (started in %.1f s; logs under %s)",
            broker.kafka_version,
            broker.bootstrap_servers,
            broker.last_start_seconds or 0.0,
            broker.workdir,
        )
        yield broker.bootstrap_servers


def provision_topics(bootstrap: str, replication: int | None) -> None:
    from processor.provisioning import ensure_topics
    from processor.settings import load_settings

    environ = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    if replication is not None:
        environ.setdefault("TOPIC_REPLICATION_FACTOR", str(replication))
    settings = load_settings(environ)
    report = asyncio.run(ensure_topics(settings))
    summary, *details = report.describe()
    logger.info("%s", summary)
    for line in details:
        logger.debug("%s", line)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(urls: dict[str, str], services: dict[str, subprocess.Popen[bytes]]) -> bool:
    """Whether every service answered its readiness probe before the timeout (and none died)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    pending = dict(urls)
    while pending and time.monotonic() < deadline:
        if any(process.poll() is not None for process in services.values()):
            return False
        pending = {name: url for name, url in pending.items() if not ready(url)}
        if pending:
            time.sleep(0.2)  # readiness poll
    if pending:
        logger.warning("%s not ready after %.0f s", " and ".join(pending), _READY_TIMEOUT_S)
    return not pending


def spawn(module: str, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], env=environ)


def banner(ingest_port: int, processor_port: int, bootstrap: str) -> str:
    return f"""
  The pipeline is running. Ctrl-C stops everything.

  Send a callback:
    curl -i -X POST http://127.0.0.1:{ingest_port}/callbacks \\
      -H 'Content-Type: application/json' \\
      -d '{_EXAMPLE_CALLBACK}'
  Send a Vonage Video callback (answered 200; archives go to /video/archives):
    curl -i -X POST http://127.0.0.1:{ingest_port}/video/sessions \\
      -H 'Content-Type: application/json' \\
      -d '{_EXAMPLE_VIDEO_CALLBACK}'
  Simulate meetings:   meetings-simulate --url http://127.0.0.1:{ingest_port} --sessions 50 --seed 1
  Watch derived data:  meetings-tail {SESSIONS.name} --bootstrap {bootstrap}
  Health and metrics:  http://127.0.0.1:{ingest_port}/readyz  http://127.0.0.1:{processor_port}/metrics
"""


def run(args: argparse.Namespace) -> int:
    stop_requested: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: stop_requested.append(received))
    with kafka(args.kafka_port, args.data_dir, args.brokers) as bootstrap:
        embedded_cluster = args.brokers > 1 and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        provision_topics(bootstrap, min(args.brokers, 3) if embedded_cluster else None)
        environ = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(args.ingest_port),
            "PROCESSOR_HTTP_HOST": "127.0.0.1",
            "PROCESSOR_HTTP_PORT": str(args.processor_port),
        }
        services = {name: spawn(name, environ) for name in ("ingest", "processor")}
        wait_ready(
            {
                "ingest": f"http://127.0.0.1:{args.ingest_port}/readyz",
                "processor": f"http://127.0.0.1:{args.processor_port}/readyz",
            },
            services,
        )
        if not stop_requested:
            sys.stdout.write(banner(args.ingest_port, args.processor_port, bootstrap))
            sys.stdout.flush()
        exit_code = 0
        while not stop_requested:
            failed = [name for name, process in services.items() if process.poll() is not None]
            if failed:
                logger.error(
                    "%s exited with %s; stopping", failed[0], services[failed[0]].returncode
                )
                exit_code = 1
                break
            time.sleep(0.2)  # supervision tick; signals interrupt it
        logger.info("stopping ingest and the processor")
        for process in services.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for name, process in services.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("%s did not stop in time; killing it", name)
                process.kill()
                process.wait()
        logger.info("stopping Kafka")
    return exit_code


def main(argv: list[str] | None = None) -> int:
    configure_logging("info", LogFormat(os.environ.get("LOG_FORMAT", "auto").lower() or "auto"))
    parser = argparse.ArgumentParser(prog="python -m devkafka.stack", description=__doc__)
    parser.add_argument("--kafka-port", type=int, default=9092)
    parser.add_argument(
        "--brokers", type=int, default=1, choices=(1, 3), help="embedded Kafka nodes (default 1)"
    )
    parser.add_argument("--ingest-port", type=int, default=8080)
    parser.add_argument("--processor-port", type=int, default=8081)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep Kafka's data here (default: temporary)"
    )
    try:
        return run(parser.parse_args(argv))
    except BrokerError as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
