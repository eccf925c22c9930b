"""One real ``python -m ingest`` process (shared token and signed callbacks configured), for
what needs a process of its own (``RLIMIT_NOFILE`` at start-up), and the checks such a test
makes of its log. Everything else about hostile input runs in-process on the fake publisher
(``tests/ingest/inprocess.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from schemas.topics import RAW
from tests.ingest.raw_http import SECRET, TOKEN
from tests.ingest.service import IngestService
from tests.kafka_helpers import create_topic, unique_name


@dataclass
class HostileTarget:
    service: IngestService
    bootstrap: str
    topic: str
    log_offset: int = 0

    @property
    def port(self) -> int:
        return self.service.port

    def new_log(self) -> str:
        """What the service logged since the current test began."""
        return self.service.log()[self.log_offset :]


def hostile_environ(bootstrap: str, topic_prefix: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MEETINGS_TOPIC_PREFIX": topic_prefix,
        "INGEST_AUTH_TOKEN": TOKEN,
        "INGEST_JWT_SECRET": SECRET,
        "INGEST_READINESS_INTERVAL_S": "0.5",
    }


@contextlib.contextmanager
def spawned_target(
    bootstrap: str,
    log_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    descriptor_limit: int | tuple[int, int] | None = None,
) -> Iterator[HostileTarget]:
    """A ready ``python -m ingest`` (``hostile_environ`` plus ``environ``) with its own topic."""
    prefix = unique_name("hostile") + "."
    topic = asyncio.run(create_topic(bootstrap, RAW.name_under(prefix), partitions=2))
    service = IngestService(
        {**hostile_environ(bootstrap, prefix), **(environ or {})},
        log_dir / "ingest.log",
        descriptor_limit=descriptor_limit,
    )
    try:
        service.start_blocking()
        yield HostileTarget(service, bootstrap, topic)
    finally:
        service.kill()


def assert_quiet_log(log: str) -> None:
    """No traceback, no error-level line, and every line one JSON object."""
    assert "Traceback" not in log, log
    assert "Logging error" not in log, log
    for line in log.splitlines():
        entry = orjson.loads(line)
        assert entry["level"] not in ("error", "critical"), line
