"""Fetch the Apache Kafka broker jars from Maven Central into a cache outside the work tree.

The broker is assembled from ``org.apache.kafka:kafka_2.13`` plus a logging backend (the broker
declares its SLF4J backend compile-only, so without one it logs nothing). Maven resolves the
runtime closure once; later runs find the finished folder and never touch the network.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.devkafka.errors import BrokerSetupError

# Pinned so that a Maven upgrade on the machine cannot change how jars are resolved.
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_COMPLETE_MARKER = ".complete"


@dataclass(frozen=True, slots=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str

    def as_pom_dependency(self) -> str:
        return (
            "    <dependency>"
            f"<groupId>{self.group}</groupId>"
            f"<artifactId>{self.artifact}</artifactId>"
            f"<version>{self.version}</version>"
            "</dependency>"
        )


def logging_backend(kafka_version: str) -> tuple[MavenArtifact, ...]:
    """The SLF4J backend matching a Kafka release line (see the broker's own build files)."""
    major = kafka_version.split(".", 1)[0]
    if major == "3":
        return (
            MavenArtifact("org.slf4j", "slf4j-reload4j", "1.7.36"),
            MavenArtifact("ch.qos.reload4j", "reload4j", "1.2.25"),
        )
    if major == "4":
        # Kafka 4.x logs through log4j2 and still links against SLF4J 1.7.
        return (
            MavenArtifact("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
            MavenArtifact("org.apache.logging.log4j", "log4j-core", "2.24.3"),
        )
    raise BrokerSetupError(f"unsupported Kafka version {kafka_version!r}: expected 3.x or 4.x")


def render_pom(kafka_version: str) -> str:
    dependencies = (
        MavenArtifact("org.apache.kafka", "kafka_2.13", kafka_version),
        *logging_backend(kafka_version),
    )
    body = "\n".join(dependency.as_pom_dependency() for dependency in dependencies)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.meetings-pipeline</groupId>
  <artifactId>embedded-kafka-{kafka_version}</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
"""


def cache_root() -> Path:
    """``$MEETINGS_CACHE_DIR``, else ``meetings-pipeline`` under the XDG cache folder."""
    explicit = os.environ.get("MEETINGS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "meetings-pipeline"


def kafka_lib_dir(kafka_version: str) -> Path:
    return cache_root() / f"kafka-{kafka_version}" / "libs"


def is_fetched(kafka_version: str) -> bool:
    return (kafka_lib_dir(kafka_version) / _COMPLETE_MARKER).is_file()


def find_maven() -> str:
    maven = shutil.which("mvn")
    if maven is None:
        raise BrokerSetupError(
            "Maven ('mvn') is required once to fetch the Kafka broker jars from Maven Central: "
            "install it (Debian: apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS to use "
            "an existing Kafka cluster instead of the embedded broker"
        )
    return maven


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise concurrent fetches (two test runs, or a test run beside ``make run``)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka_jars(kafka_version: str) -> Path:
    """Return the folder of broker jars, fetching them with Maven the first time."""
    lib_dir = kafka_lib_dir(kafka_version)
    if is_fetched(kafka_version):
        return lib_dir
    with _exclusive(lib_dir.parent / ".fetch.lock"):
        if is_fetched(kafka_version):  # another process finished while we waited
            return lib_dir
        _fetch(kafka_version, lib_dir)
    return lib_dir


def _fetch(kafka_version: str, lib_dir: Path) -> None:
    maven = find_maven()
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib_dir.parent, prefix=".fetch-") as scratch:
        scratch_dir = Path(scratch)
        pom = scratch_dir / "pom.xml"
        pom.write_text(render_pom(kafka_version))
        staging = scratch_dir / "libs"
        command = [
            maven,
            "-q",
            "-B",
            "-f",
            str(pom),
            f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise BrokerSetupError(
                f"Maven could not fetch Apache Kafka {kafka_version} "
                f"(exit {result.returncode}): {output}"
            )
        if not any(staging.glob(f"kafka_2.13-{kafka_version}.jar")):
            raise BrokerSetupError(f"Maven finished but kafka_2.13-{kafka_version}.jar is missing")
        (staging / _COMPLETE_MARKER).write_text(kafka_version + "\n")
        if lib_dir.exists():  # a half-finished folder from an interrupted older layout
            shutil.rmtree(lib_dir)
        staging.rename(lib_dir)
