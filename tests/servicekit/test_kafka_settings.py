"""Kafka security settings: what every client is built with, and the mistakes caught at start."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ingest.settings import load_settings as load_ingest_settings
from processor.settings import load_settings as load_processor_settings
from servicekit.env import SettingsError
from servicekit.kafka import KafkaSettings, SaslMechanism, SecurityProtocol
from servicekit.settings import load

TLS = Path(__file__).parent.parent / "fixtures" / "tls"
SASL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "KAFKA_SASL_USERNAME": "meetings",
    "KAFKA_SASL_PASSWORD": "kafka-password-1",
    "KAFKA_SSL_CA_FILE": str(TLS / "ca.crt"),
}


def kafka(environ: dict[str, str]) -> KafkaSettings:
    return load_processor_settings(environ).kafka


def test_plaintext_by_default() -> None:
    assert kafka({}).client_options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_over_tls_reaches_every_client_option() -> None:
    settings = kafka(SASL)
    assert settings.security_protocol is SecurityProtocol.SASL_SSL
    assert settings.sasl_mechanism is SaslMechanism.SCRAM_SHA_256
    options = settings.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "meetings"
    assert options["sasl_plain_password"] == "kafka-password-1"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "meetings test CA"),),)
    ]
    # one context per process, however many clients (a producer per partition) are built
    assert settings.client_options()["ssl_context"] is context


@pytest.mark.parametrize("spelling", ["sasl_plaintext", "SASL_PLAINTEXT", "Sasl_Plaintext"])
def test_the_protocol_is_read_in_any_case(spelling: str) -> None:
    settings = kafka({**SASL, "KAFKA_SECURITY_PROTOCOL": spelling, "KAFKA_SSL_CA_FILE": ""})
    assert settings.security_protocol is SecurityProtocol.SASL_PLAINTEXT
    assert "ssl_context" not in settings.client_options()


def test_the_password_never_shows() -> None:
    settings = kafka(SASL)
    assert "kafka-password-1" not in repr(settings)
    assert "kafka-password-1" not in str(settings)


def test_a_client_certificate_with_an_encrypted_key_is_loaded() -> None:
    settings = kafka(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(TLS / "ca.crt"),
            "KAFKA_SSL_CERT_FILE": str(TLS / "client.crt"),
            "KAFKA_SSL_KEY_FILE": str(TLS / "client.key"),
            "KAFKA_SSL_KEY_PASSWORD": "client-key-secret",
            "KAFKA_SSL_CHECK_HOSTNAME": "false",
        }
    )
    options = settings.client_options()
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # still verified


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "meetings"},
            "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SASL_USERNAME": "meetings", "KAFKA_SASL_PASSWORD": "x" * 16},
            "KAFKA_SASL_* are set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL",
        ),
        (
            {"KAFKA_SSL_CA_FILE": str(TLS / "ca.crt")},
            "KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": str(TLS / "client.crt")},
            "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.crt"},
            "the KAFKA_SSL_* files cannot be used: [Errno 2] No such file or directory",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CERT_FILE": str(TLS / "client.crt"),
                "KAFKA_SSL_KEY_FILE": str(TLS / "client.key"),
                "KAFKA_SSL_KEY_PASSWORD": "not-the-password",
            },
            "the KAFKA_SSL_* files cannot be used",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS' must be one of"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM='GSSAPI' must be one of"),
    ],
)
def test_unusable_security_settings_stop_both_services_at_start(
    environ: dict[str, str], problem: str
) -> None:
    for loader in (load_ingest_settings, load_processor_settings):
        with pytest.raises(SettingsError) as caught:
            loader(environ)
        assert problem in str(caught.value)


def test_kafka_settings_load_on_their_own() -> None:
    settings = load(KafkaSettings, {"KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093"}, what="kafka")
    assert settings.client_options()["bootstrap_servers"] == "k1:9093,k2:9093"
