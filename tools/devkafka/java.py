"""Locate a Java runtime able to run the Kafka broker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tools.devkafka.errors import BrokerSetupError

MINIMUM_JAVA = 17
_INSTALL_HINT = (
    "install a JDK or JRE 17+ (Debian: apt-get install openjdk-17-jre-headless), or set "
    "KAFKA_BOOTSTRAP_SERVERS to use an existing Kafka cluster instead of the embedded broker"
)
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on ``PATH``; checked to be 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    candidate: str | None
    if java_home:
        candidate = str(Path(java_home) / "bin" / "java")
        if not Path(candidate).is_file():
            raise BrokerSetupError(f"JAVA_HOME={java_home} has no bin/java: {_INSTALL_HINT}")
    else:
        candidate = shutil.which("java")
        if candidate is None:
            raise BrokerSetupError(f"Java was not found on PATH: {_INSTALL_HINT}")
    major = java_major_version(candidate)
    if major < MINIMUM_JAVA:
        raise BrokerSetupError(
            f"{candidate} is Java {major}; Apache Kafka 4 needs {MINIMUM_JAVA}+: {_INSTALL_HINT}"
        )
    return candidate


def java_major_version(java: str) -> int:
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError as exc:
        raise BrokerSetupError(f"cannot run {java}: {exc}: {_INSTALL_HINT}") from exc
    match = _VERSION.search(result.stderr + result.stdout)
    if match is None:
        raise BrokerSetupError(f"cannot tell the version of {java}: {result.stderr.strip()!r}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major  # "1.8.0" is Java 8
