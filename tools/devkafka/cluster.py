"""A production-shaped Apache Kafka cluster on this machine: three KRaft nodes, each a broker and a
controller voter, internal topics replicated to every node with min ISR two.

Used by the fault tests and ``make run BROKERS=3``. Every node is an ``EmbeddedKafka`` with its own
ports and log directory under the cluster's working directory (``node-<id>``); they share one
cluster id, kept across runs when the working directory is reused.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tools.devkafka.broker import EmbeddedKafka, formatted_cluster_id, free_port, new_cluster_id
from tools.devkafka.errors import BrokerStartError


class EmbeddedKafkaCluster:
    """``size`` KRaft nodes on loopback; ``start()`` returns once every broker is registered."""

    def __init__(
        self,
        size: int = 3,
        *,
        workdir: Path | None = None,
        first_port: int | None = None,
        kafka_version: str | None = None,
        heap: str = "384m",
        start_timeout: float = 180.0,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self._owns_workdir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_timeout = start_timeout
        node_ids = range(1, size + 1)
        controller_ports = {node_id: free_port() for node_id in node_ids}
        voters = ",".join(f"{i}@127.0.0.1:{port}" for i, port in controller_ports.items())
        cluster_id = self._existing_cluster_id(node_ids) or new_cluster_id()
        self.nodes: dict[int, EmbeddedKafka] = {
            node_id: EmbeddedKafka(
                port=first_port if node_id == 1 and first_port is not None else None,
                controller_port=controller_ports[node_id],
                workdir=self.workdir / f"node-{node_id}",
                kafka_version=kafka_version,
                heap=heap,
                start_timeout=start_timeout,
                node_id=node_id,
                cluster_id=cluster_id,
                quorum_voters=voters,
                internal_replication=min(size, 3),
                extra_properties=extra_properties,
            )
            for node_id in node_ids
        }
        self.cluster_id = cluster_id
        self.last_start_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    @property
    def kafka_version(self) -> str:
        return self.nodes[1].kafka_version

    def running(self) -> list[int]:
        return [node_id for node_id, node in self.nodes.items() if node.is_running()]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        began = time.monotonic()
        try:
            for node in self.nodes.values():
                node.launch()
            for node in self.nodes.values():
                node.wait_until_serving(began)
            self.wait_for_brokers(len(self.nodes), began + self._start_timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        return self

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crashed machine would; its data stays for ``restart``."""
        self.nodes[node_id].kill()

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again and wait until the cluster counts it."""
        self.relaunch(node_id)
        self.wait_for_node(node_id)

    def relaunch(self, node_id: int) -> None:
        """Start a stopped or killed node without waiting. Call it from a thread that outlives
        the node (the main thread): a node dies with the thread that launched it
        (``PR_SET_PDEATHSIG``), so a worker thread of an executor is the wrong place."""
        self.nodes[node_id].launch()

    def wait_for_node(self, node_id: int) -> None:
        """Block until a relaunched node serves and every running node counts it (may run in
        a worker thread)."""
        self.nodes[node_id].wait_until_serving()
        self.wait_for_brokers(len(self.running()), time.monotonic() + self._start_timeout)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def close(self) -> None:
        self.stop()
        for node in self.nodes.values():
            node.close()
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

    # -- cluster state ---------------------------------------------------------------------

    def wait_for_brokers(self, count: int, deadline: float) -> None:
        """Until every running node's metadata lists ``count`` live brokers."""
        while True:
            running = [self.nodes[node_id] for node_id in self.running()]
            if not running:
                raise BrokerStartError("no node of the Kafka cluster is running")
            if all(live_broker_count(node.port) == count for node in running):
                return
            if time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- node {node.node_id}:\n{node.log_tail(20)}" for node in running
                )
                raise BrokerStartError(
                    f"the Kafka cluster did not show {count} live brokers in time:\n{tails}"
                )
            time.sleep(0.2)  # readiness poll interval, not synchronisation

    def active_controller(self) -> int:
        """The node leading the KRaft quorum, as the running nodes last recorded it."""
        best: tuple[int, int] | None = None
        for node_id in self.running():
            state_file = self.nodes[node_id].workdir / "data" / "__cluster_metadata-0"
            try:
                state = json.loads((state_file / "quorum-state").read_text())
            except (FileNotFoundError, ValueError):
                continue
            epoch, leader = int(state.get("leaderEpoch", -1)), int(state.get("leaderId", -1))
            if leader > 0 and (best is None or epoch > best[0]):
                best = (epoch, leader)
        if best is None:
            raise BrokerStartError("no running node knows the active controller")
        return best[1]

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- node {node_id}:\n{node.log_tail(lines)}" for node_id, node in self.nodes.items()
        )

    def _existing_cluster_id(self, node_ids: range) -> str | None:
        for node_id in node_ids:
            found = formatted_cluster_id(self.workdir / f"node-{node_id}" / "data")
            if found is not None:
                return found
        return None


# Metadata v4 (api key 3; versions below 4 are gone from Kafka 4) asking for no topic: the reply
# starts with the live brokers, which is all the readiness check needs.
_CLIENT_ID = b"devkafka-probe"
_METADATA_REQUEST = (
    struct.pack(">hhih", 3, 4, 2, len(_CLIENT_ID)) + _CLIENT_ID + struct.pack(">i?", 0, False)
)
_METADATA_FRAME = struct.pack(">i", len(_METADATA_REQUEST)) + _METADATA_REQUEST


def live_broker_count(port: int, timeout: float = 1.0) -> int:
    """How many live brokers the node on ``127.0.0.1:port`` knows of (-1: no answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(_METADATA_FRAME)
            header = b""
            while len(header) < 16:
                chunk = connection.recv(16 - len(header))
                if not chunk:
                    return -1
                header += chunk
    except OSError:
        return -1
    _size, correlation_id, _throttle, brokers = struct.unpack(">iiii", header)
    return int(brokers) if correlation_id == 2 else -1
