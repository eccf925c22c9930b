"""One real ingest process (shared token and signed callbacks configured) for hostile-input
tests, and the checks every such test makes of its log."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tests.ingest.raw_http import SECRET, TOKEN
from tests.ingest.service import IngestService


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


def assert_quiet_log(log: str) -> None:
    """No traceback, no error-level line, and every line one JSON object."""
    assert "Traceback" not in log, log
    assert "Logging error" not in log, log
    for line in log.splitlines():
        entry = orjson.loads(line)
        assert entry["level"] not in ("error", "critical"), line
