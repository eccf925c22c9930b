"""The embedded broker's optional SASL listeners, as broker properties; and cluster ids the format
command accepts. (Logins against them are tested in tests/servicekit/test_kafka_security.py.)"""

from __future__ import annotations

from pathlib import Path

from tools.devkafka import EmbeddedKafka
from tools.devkafka.broker import new_cluster_id
from tools.devkafka.sasl import ListenerTls, scram_format_arguments


def test_cluster_ids_never_look_like_an_option() -> None:
    assert not [i for i in (new_cluster_id() for _ in range(5000)) if i.startswith("-")]


def test_sasl_listeners_sit_beside_plaintext(tmp_path: Path) -> None:
    tls = ListenerTls(keystore=tmp_path / "broker.pem", truststore=tmp_path / "ca.crt")
    broker = EmbeddedKafka(workdir=tmp_path, sasl_users={"alice": "a-secret"}, sasl_tls=tls)
    properties = broker._properties()
    plain, ssl = broker.sasl_ports["SASL_PLAINTEXT"], broker.sasl_ports["SASL_SSL"]
    assert properties["advertised.listeners"] == (
        f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{plain},"
        f"SASL_SSL://127.0.0.1:{ssl}"
    )
    assert properties["inter.broker.listener.name"] == "PLAINTEXT"
    assert properties["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert (
        'user_alice="a-secret"' in properties["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    )
    assert properties["listener.name.sasl_ssl.ssl.keystore.location"] == str(tls.keystore)
    assert broker.sasl_bootstrap_servers("SASL_SSL") == f"127.0.0.1:{ssl}"


def test_without_users_there_is_no_sasl_listener(tmp_path: Path) -> None:
    broker = EmbeddedKafka(workdir=tmp_path)
    assert broker.sasl_ports == {}
    assert "SASL" not in broker._properties()["listeners"]


def test_scram_credentials_are_written_at_format_time() -> None:
    assert scram_format_arguments({"alice": "a-secret"}) == [
        "--add-scram",
        "SCRAM-SHA-256=[name=alice,password=a-secret]",
        "--add-scram",
        "SCRAM-SHA-512=[name=alice,password=a-secret]",
    ]
