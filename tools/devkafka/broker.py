"""A real Apache Kafka node (KRaft, broker and controller in one JVM) run as a child process.

Used by the test suite's session fixture and by ``make run``; ``tools.devkafka.cluster`` joins
three of them into one cluster. The broker is the genuine article, assembled from Maven Central
jars (see ``tools.devkafka.jars``); only the packaging is ours.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tools.devkafka.errors import BrokerStartError
from tools.devkafka.jars import ensure_kafka_jars
from tools.devkafka.java import find_java
from tools.devkafka.sasl import ListenerTls, sasl_listeners, scram_format_arguments
from tools.devkafka.version import selected_kafka_version

_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""

_LOG4J1_PROPERTIES = """\
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, outside the kernel's range of
    ephemeral ports.

    A port the kernel hands out for ``bind(0)`` is an ephemeral one, which any outgoing
    connection on the machine can be given too: between this probe and the broker's own bind
    (a JVM start later), or while a killed node waits to take its port back, a busy test run's
    clients took it ("Address already in use"). Ports below or above that range are never
    given to outgoing connections. Each is handed out once per process."""
    low, high = _ephemeral_ports()
    for _ in range(1000):
        port = random.randrange(_LOWEST_PORT, 65536)
        if (low <= port <= high) or port in _handed_out or not port_is_free(port):
            continue
        _handed_out.add(port)
        return port
    raise BrokerStartError(f"no free port outside the ephemeral range {low}-{high}")


_LOWEST_PORT = 10_000
"""Below are well-known and registered services' usual ports."""
_handed_out: set[int] = set()


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; IANA's range elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def new_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints, without starting a JVM for it. Like Kafka's
    ``Uuid.randomUuid()`` it never starts with ``-``, which the format command would take for an
    option (one id in 64 would otherwise fail to format)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM the broker if the Python parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def formatted_cluster_id(data_dir: Path) -> str | None:
    """The cluster id a formatted log directory belongs to (``None`` when not formatted yet)."""
    try:
        text = (data_dir / "meta.properties").read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id" and value.strip():
            return value.strip()
    return None


class EmbeddedKafka:
    """One KRaft node (broker and controller in one JVM) on ``127.0.0.1:<port>``.

    ``start()`` formats the log directory on first use and waits until the client port accepts
    connections. ``stop()`` shuts the broker down but keeps its data, so ``start()`` again brings
    back the same cluster (how tests take the broker away and give it back). A working directory
    formatted by an earlier run is reused with its cluster id (``--data-dir``). ``close()`` also
    removes the working directory when this object created it.

    Alone (the defaults) the node is a cluster of one. As a member of a cluster it gets its
    ``node_id``, the shared ``cluster_id``, every voter in ``quorum_voters`` and the replication
    of the internal topics (``internal_replication``, min ISR one less).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        workdir: Path | None = None,
        kafka_version: str | None = None,
        heap: str = "512m",
        extra_properties: Mapping[str, str] | None = None,
        sasl_users: Mapping[str, str] | None = None,
        sasl_tls: ListenerTls | None = None,
        start_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        node_id: int = 1,
        cluster_id: str | None = None,
        quorum_voters: str | None = None,
        internal_replication: int = 1,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.node_id = node_id
        self.quorum_voters = quorum_voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self._internal_replication = internal_replication
        self.kafka_version = kafka_version or selected_kafka_version()
        self._owns_workdir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "broker.log"
        self._heap = heap
        self._extra_properties = dict(extra_properties or {})
        self._sasl_users = dict(sasl_users or {})
        self._sasl_tls = sasl_tls
        protocols = ["SASL_PLAINTEXT", "SASL_SSL"] if sasl_tls is not None else ["SASL_PLAINTEXT"]
        self.sasl_ports = {p: free_port() for p in protocols} if self._sasl_users else {}
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self.cluster_id = (
            formatted_cluster_id(self.workdir / "data") or cluster_id or new_cluster_id()
        )
        self._process: subprocess.Popen[bytes] | None = None
        self.last_pid: int | None = None
        self.last_start_seconds: float | None = None
        self._launched_at = time.monotonic()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def sasl_bootstrap_servers(self, protocol: str = "SASL_PLAINTEXT") -> str:
        """A SASL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 for ``sasl_users``):
        ``SASL_PLAINTEXT``, or ``SASL_SSL`` when the broker was given ``sasl_tls``."""
        if protocol not in self.sasl_ports:
            raise ValueError(f"this broker has no {protocol} listener (sasl_users, sasl_tls)")
        return f"127.0.0.1:{self.sasl_ports[protocol]}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Launch the node and wait until it serves (a lone node, or the last of a cluster)."""
        if self.is_running():
            return self
        began = time.monotonic()
        self.launch()
        self.wait_until_serving(began)
        return self

    def launch(self) -> None:
        """Start the JVM without waiting: the nodes of a cluster only serve once a quorum of
        them runs, so they are all launched first and then waited for."""
        if self.is_running():
            return
        self._launched_at = time.monotonic()
        for port in (self.port, self.controller_port, *self.sasl_ports.values()):
            if not port_is_free(port):
                raise BrokerStartError(
                    f"port {port} on 127.0.0.1 is already in use (another Kafka, or an earlier "
                    "run still going?): stop it or choose another port"
                )
        java = find_java()
        classpath = str(ensure_kafka_jars(self.kafka_version) / "*")
        properties = self._write_config()
        self._format_storage(java, classpath, properties)
        command = [
            java,
            f"-Xms{min_heap(self._heap)}",
            f"-Xmx{self._heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *self._logging_flags(),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_die_with_parent,  # only prctl(), safe before exec
            )
        self.last_pid = self._process.pid

    def wait_until_serving(self, began: float | None = None) -> None:
        """Block until the client port answers Kafka requests; stops the node on failure."""
        began = self._launched_at if began is None else began
        try:
            self._wait_until_serving(began)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """SIGTERM the broker's process group (clean shutdown hook), SIGKILL it if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Anything the JVM started in its group goes with it.
        _signal_group(process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """Take the broker away abruptly (SIGKILL), as a crashed machine would."""
        process, self._process = self._process, None
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- diagnostics -----------------------------------------------------------------------

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log was written)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals -------------------------------------------------------------------------

    def _properties(self) -> dict[str, str]:
        data_dir = self.workdir / "data"
        replication = self._internal_replication
        min_isr = max(replication - 1, 1)
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.quorum_voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data_dir),
            # Internal topics replicated across the cluster (on one node: not at all, which is
            # what makes groups and transactions work there), min ISR one less.
            "offsets.topic.replication.factor": str(replication),
            "transaction.state.log.replication.factor": str(replication),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(replication),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # Small and quick on a 2-core machine.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": "2097152",
            # Topics are created on purpose, as a production cluster would insist.
            "auto.create.topics.enable": "false",
        }
        if self.sasl_ports:
            properties |= sasl_listeners(
                properties, self.sasl_ports, self._sasl_users, self._sasl_tls
            )
        properties.update(self._extra_properties)
        return properties

    def _write_config(self) -> Path:
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in self._properties().items()))
        if self._uses_log4j2():
            (self.workdir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        else:
            (self.workdir / "log4j.properties").write_text(_LOG4J1_PROPERTIES)
        return path

    def _uses_log4j2(self) -> bool:
        return not self.kafka_version.startswith("3.")

    def _logging_flags(self) -> list[str]:
        flags = [f"-Dkafka.logs.dir={self.workdir}"]
        if self._uses_log4j2():
            flags.append(f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}")
        else:
            flags.append(f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}")
        return flags

    def _format_storage(self, java: str, classpath: str, properties: Path) -> None:
        if formatted_cluster_id(self.workdir / "data") is not None:
            return  # formatted by an earlier run: keep its cluster id and data
        command = [
            java,
            "-Xmx256m",
            *self._logging_flags(),
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(properties),
            "--ignore-formatted",
            *scram_format_arguments(self._sasl_users),
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=self._start_timeout
        )
        if result.returncode != 0:
            raise BrokerStartError(
                f"formatting the Kafka log directory failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr).strip()[-4000:]}"
            )

    def _wait_until_serving(self, began: float) -> None:
        deadline = began + self._start_timeout
        process = self._process
        assert process is not None
        while True:
            exit_code = process.poll()
            if exit_code is not None:
                raise BrokerStartError(
                    f"the Kafka broker exited with code {exit_code} before it served on port "
                    f"{self.port}; last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if answers_kafka_requests(self.port):
                return
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"the Kafka broker did not open port {self.port} within "
                    f"{self._start_timeout:.0f} s; last lines of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)  # readiness poll interval, not synchronisation


def min_heap(max_heap: str) -> str:
    """Half the maximum heap, in the same unit (``512m`` -> ``256m``)."""
    digits = "".join(ch for ch in max_heap if ch.isdigit())
    unit = max_heap[len(digits) :]
    return f"{max(int(digits) // 2, 1)}{unit}"


# ApiVersions v0 (api key 18), correlation id 1, client id "devkafka-probe": the smallest request
# every broker answers, so a reply proves Kafka itself serves the port, not some other listener.
_CLIENT_ID = b"devkafka-probe"
_API_VERSIONS_REQUEST = struct.pack(">hhih", 18, 0, 1, len(_CLIENT_ID)) + _CLIENT_ID
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS_REQUEST)) + _API_VERSIONS_REQUEST


def answers_kafka_requests(port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka broker on ``127.0.0.1:port`` answers an ApiVersions request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(_API_VERSIONS_FRAME)
            header = _receive_exactly(connection, 8)
    except OSError:
        return False
    _size, correlation_id = struct.unpack(">ii", header)
    return bool(correlation_id == 1)


def _receive_exactly(connection: socket.socket, count: int) -> bytes:
    received = b""
    while len(received) < count:
        chunk = connection.recv(count - len(received))
        if not chunk:
            raise ConnectionError("closed before the reply was complete")
        received += chunk
    return received


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
