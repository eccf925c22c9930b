"""Settings declared once: read by type, nested groups, every problem reported together."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import pytest

from servicekit.env import Secret, SettingsError
from servicekit.settings import declared, load, setting


class Mode(enum.StrEnum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inner:
    host: str = setting("DEMO_HOST", "localhost", "where")


@dataclass(frozen=True, slots=True, kw_only=True)
class Demo:
    inner: Inner = field(default_factory=Inner)
    port: int = setting("DEMO_PORT", 80, "port", minimum=1, maximum=65535)
    ratio: float = setting("DEMO_RATIO", 0.5, "ratio", minimum=0, maximum=1)
    enabled: bool = setting("DEMO_ENABLED", False, "switch")
    mode: Mode = setting("DEMO_MODE", Mode.SAFE, "mode")
    level: str = setting("DEMO_LEVEL", "info", "level", choices=("info", "debug"))
    token: Secret | None = setting("DEMO_TOKEN", None, "secret")


def test_defaults_when_nothing_is_set() -> None:
    assert load(Demo, {}, what="demo") == Demo()


def test_values_are_read_by_their_declared_type() -> None:
    settings = load(
        Demo,
        {
            "DEMO_HOST": "kafka",
            "DEMO_PORT": "9092",
            "DEMO_RATIO": "0.25",
            "DEMO_ENABLED": "yes",
            "DEMO_MODE": "FAST",
            "DEMO_LEVEL": "Debug",
            "DEMO_TOKEN": "s3cret",
        },
        what="demo",
    )
    assert settings.inner.host == "kafka"
    assert (settings.port, settings.ratio, settings.enabled) == (9092, 0.25, True)
    assert (settings.mode, settings.level) == (Mode.FAST, "debug")
    assert settings.token == Secret("s3cret")
    assert "s3cret" not in repr(settings)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as failure:
        load(
            Demo,
            {"DEMO_PORT": "0", "DEMO_RATIO": "x", "DEMO_MODE": "slow", "DEMO_ENABLED": "2"},
            what="demo",
            checks=lambda s: ["a cross-field problem"],
        )
    message = str(failure.value)
    assert "DEMO_PORT=0 must be at least 1 and at most 65535" in message
    assert "DEMO_RATIO='x' is not a number" in message
    assert "DEMO_MODE='slow' must be one of fast, safe" in message
    assert "DEMO_ENABLED='2' is not a boolean" in message
    assert "a cross-field problem" in message


def test_declarations_list_nested_groups_first_with_their_defaults() -> None:
    listed = [(s.spec.env, s.default_shown) for s in declared(Demo)]
    assert listed == [
        ("DEMO_HOST", "localhost"),
        ("DEMO_PORT", "80"),
        ("DEMO_RATIO", "0.5"),
        ("DEMO_ENABLED", "false"),
        ("DEMO_MODE", "safe"),
        ("DEMO_LEVEL", "info"),
        ("DEMO_TOKEN", "unset"),
    ]
