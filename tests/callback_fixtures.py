"""Example callback bodies (contract §2, the Vonage docs and their irregular variants) as data
files."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "callbacks"
VALID = FIXTURES / "valid"
INVALID = FIXTURES / "invalid"


def valid_names() -> list[str]:
    return sorted(path.name for path in VALID.iterdir())


def invalid_names() -> list[str]:
    return sorted(path.name for path in INVALID.iterdir())


def valid_body(name: str) -> bytes:
    return (VALID / name).read_bytes()


def invalid_body(name: str) -> bytes:
    return (INVALID / name).read_bytes()
