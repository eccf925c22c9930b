"""``python -m tools.devkafka``: run a Kafka broker (or ``--brokers 3``: a three-node cluster) in
the foreground until Ctrl-C/SIGTERM.

``python -m tools.devkafka --fetch-only`` only makes sure the broker jars are in the cache.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from tools.devkafka.broker import EmbeddedKafka
from tools.devkafka.cluster import EmbeddedKafkaCluster
from tools.devkafka.errors import BrokerError
from tools.devkafka.jars import ensure_kafka_jars
from tools.devkafka.version import selected_kafka_version

logger = logging.getLogger("devkafka")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devkafka", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=9092, help="client port (of the first node; default 9092)"
    )
    parser.add_argument(
        "--brokers",
        type=int,
        default=1,
        choices=(1, 3),
        help="1: a single node; 3: a cluster with replication 3 and min ISR 2 (default 1)",
    )
    parser.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port (default: free)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep logs and data here across runs (default: a temporary folder, removed at exit)",
    )
    parser.add_argument("--heap", default="512m", help="JVM maximum heap (default 512m)")
    parser.add_argument(
        "--fetch-only", action="store_true", help="fetch the broker jars into the cache and exit"
    )
    return parser.parse_args(argv)


def is_running(broker: EmbeddedKafka | EmbeddedKafkaCluster) -> bool:
    if isinstance(broker, EmbeddedKafka):
        return broker.is_running()
    return len(broker.running()) == len(broker.nodes)


def log_tail(broker: EmbeddedKafka | EmbeddedKafkaCluster) -> str:
    return broker.log_tail() if isinstance(broker, EmbeddedKafka) else broker.log_tails()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_args(argv)
    version = selected_kafka_version()
    try:
        if args.fetch_only:
            logger.info("Apache Kafka %s jars: %s", version, ensure_kafka_jars(version))
            return 0
        broker: EmbeddedKafka | EmbeddedKafkaCluster
        if args.brokers == 1:
            broker = EmbeddedKafka(
                port=args.port,
                controller_port=args.controller_port,
                workdir=args.data_dir,
                kafka_version=version,
                heap=args.heap,
            )
        else:
            broker = EmbeddedKafkaCluster(
                args.brokers,
                workdir=args.data_dir,
                first_port=args.port,
                kafka_version=version,
                heap=args.heap,
            )
        # A plain flag: an Event set from a signal handler can deadlock on its own lock.
        stop_requested: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda received, _frame: stop_requested.append(received))
        with broker:
            logger.info(
                "Apache Kafka %s serving at %s (started in %.1f s); logs under %s",
                version,
                broker.bootstrap_servers,
                broker.last_start_seconds or 0.0,
                broker.workdir,
            )
            while not stop_requested:
                time.sleep(0.5)  # supervision tick; signals interrupt it
                if not is_running(broker):
                    logger.error("a broker exited; last log lines:\n%s", log_tail(broker))
                    return 1
            logger.info("stopping the broker")
        return 0
    except BrokerError as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
