"""Typed reading of settings from an environment mapping, shared by both services.

Pure: the caller passes the mapping (``os.environ`` at start-up, a dict in tests). Every problem
is collected and reported at once, naming the variable and what it should look like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

_Number = TypeVar("_Number", int, float)


class SettingsError(ValueError):
    """One or more settings are missing or malformed; the message lists them all."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A configuration secret: compared and used, never shown by ``repr`` or ``str``."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class EnvReader:
    """Reads variables from ``environ``, remembering every problem for one combined error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def optional_text(self, name: str) -> str | None:
        return self._raw(name)

    def optional_secret(self, name: str) -> Secret | None:
        raw = self._raw(name)
        return Secret(raw) if raw is not None else None

    def integer(
        self, name: str, default: int, *, minimum: int | None = 0, maximum: int | None = None
    ) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self._problems.append(f"{name}={raw!r} is not an integer")
            return default
        return self._bounded(name, value, minimum, maximum, default)

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = 0.0,
        maximum: float | None = None,
    ) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self._problems.append(f"{name}={raw!r} is not a number")
            return default
        return self._bounded(name, value, minimum, maximum, default)

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        self._problems.append(f"{name}={raw!r} is not a boolean (use true or false)")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() not in choices:
            self._problems.append(f"{name}={raw!r} must be one of {', '.join(choices)}")
            return default
        return raw.lower()

    def problem(self, message: str) -> None:
        """Record a cross-field problem found by the caller."""
        self._problems.append(message)

    def finish(self, what: str) -> None:
        """Raise ``SettingsError`` listing every problem seen, if any."""
        if self._problems:
            listed = "\n".join(f"  - {problem}" for problem in self._problems)
            raise SettingsError(f"invalid {what} settings:\n{listed}")

    def _bounded(
        self,
        name: str,
        value: _Number,
        minimum: _Number | None,
        maximum: _Number | None,
        default: _Number,
    ) -> _Number:
        too_small = minimum is not None and value < minimum
        too_large = maximum is not None and value > maximum
        if too_small or too_large:
            bounds = [f"at least {minimum}"] if minimum is not None else []
            bounds += [f"at most {maximum}"] if maximum is not None else []
            self._problems.append(f"{name}={value} must be {' and '.join(bounds)}")
            return default
        return value
