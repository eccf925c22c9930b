"""The three-node cluster's own helpers (the cluster itself runs in tests/cluster)."""

from __future__ import annotations

from pathlib import Path

from tools.devkafka import free_port
from tools.devkafka.broker import port_is_free
from tools.devkafka.cluster import EmbeddedKafkaCluster, live_broker_count


def test_a_formatted_working_directory_keeps_its_cluster_id(tmp_path: Path) -> None:
    data = tmp_path / "node-2" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=2\nversion=1\ncluster.id=kept-cluster-id\n")
    cluster = EmbeddedKafkaCluster(3, workdir=tmp_path)
    assert cluster.cluster_id == "kept-cluster-id"
    assert {node.cluster_id for node in cluster.nodes.values()} == {"kept-cluster-id"}
    voters = {node.quorum_voters for node in cluster.nodes.values()}
    assert len(voters) == 1  # every node knows all three voters
    assert voters.pop().count("@127.0.0.1:") == 3


def test_a_fresh_cluster_shares_one_new_id_and_lists_every_broker(tmp_path: Path) -> None:
    cluster = EmbeddedKafkaCluster(3, workdir=tmp_path, first_port=free_port())
    assert len({node.cluster_id for node in cluster.nodes.values()}) == 1
    assert cluster.bootstrap_servers.count(",") == 2
    assert cluster.running() == []


def test_no_broker_answers_on_a_closed_port() -> None:
    assert live_broker_count(free_port(), timeout=0.3) == -1


def test_free_ports_are_never_ephemeral_ones_and_never_handed_out_twice() -> None:
    """An ephemeral port can be given to any outgoing connection before a broker binds it, or
    while a killed node waits to take it back."""
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if low <= port <= high]
    assert all(port_is_free(port) for port in ports)
