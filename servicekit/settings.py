"""Settings declared once: each one is a dataclass field carrying its environment variable,
default, bounds and one-line meaning.

```python
@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    port: int = setting("INGEST_PORT", 8080, "listening port", minimum=0, maximum=65535)

settings = load(IngestSettings, os.environ, what="ingest")
```

``load`` reads every declared field from the environment (the type comes from the annotation:
``str``, ``int``, ``float``, ``bool``, ``Secret | None`` or a ``StrEnum``), recurses into fields
whose type is itself a settings dataclass (``kafka: KafkaSettings``), and raises one
``SettingsError`` listing every problem. The settings tables of docs/operations.md are generated
from the same declarations (``python -m tools.settings_docs``), so the variable, its default and
its meaning are written once and cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from servicekit.env import EnvReader, Secret, SettingsError

T = TypeVar("T")
S = TypeVar("S")

_METADATA_KEY = "setting"


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """What the environment variable of one setting is and how it is read."""

    env: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    """Allowed values of a ``str`` setting (compared case-insensitively, stored lower case)."""
    default_text: str | None = None
    """How the default is shown in the settings tables when its value is not
    self-explanatory."""


def setting(
    env: str,
    default: T,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    default_text: str | None = None,
) -> T:
    """A dataclass field read from ``env`` (see the module docstring)."""
    spec = SettingSpec(
        env=env,
        doc=doc,
        minimum=minimum,
        maximum=maximum,
        choices=choices,
        default_text=default_text,
    )
    return dataclasses.field(default=default, metadata={_METADATA_KEY: spec})


@dataclass(frozen=True, slots=True)
class DeclaredSetting:
    """One setting as declared, for loading and for the settings tables."""

    spec: SettingSpec
    attribute: str
    value_type: Any
    default: Any

    @property
    def default_shown(self) -> str:
        if self.spec.default_text is not None:
            return self.spec.default_text
        return _shown(self.default)


def declared(cls: type[Any]) -> Iterator[DeclaredSetting]:
    """Every setting of ``cls`` and of the settings dataclasses it nests, in declaration order."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        spec = item.metadata.get(_METADATA_KEY)
        if isinstance(spec, SettingSpec):
            yield DeclaredSetting(spec, item.name, hints[item.name], item.default)
        elif _is_settings_class(hints[item.name]):
            yield from declared(hints[item.name])


def load(
    cls: type[S],
    environ: Mapping[str, str] | None = None,
    *,
    what: str,
    checks: Callable[[S], Iterable[str]] | None = None,
) -> S:
    """``cls`` read from ``environ`` (default ``os.environ``); ``checks`` adds cross-field
    problems. Raises ``SettingsError`` naming every malformed value at once."""
    reader = EnvReader(os.environ if environ is None else environ)
    settings = _build(cls, reader)
    if checks is not None:
        for problem in checks(settings):
            reader.problem(problem)
    reader.finish(what)
    return settings


def _build(cls: type[S], reader: EnvReader) -> S:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = item.metadata.get(_METADATA_KEY)
        if isinstance(spec, SettingSpec):
            values[item.name] = _read(reader, spec, hints[item.name], item.default)
        elif _is_settings_class(hints[item.name]):
            values[item.name] = _build(hints[item.name], reader)
    return cls(**values)


def _read(reader: EnvReader, spec: SettingSpec, value_type: Any, default: Any) -> Any:
    name = spec.env
    if value_type is bool:
        return reader.flag(name, default)
    if value_type is int:
        return reader.integer(
            name,
            default,
            minimum=int(spec.minimum) if spec.minimum is not None else None,
            maximum=int(spec.maximum) if spec.maximum is not None else None,
        )
    if value_type is float:
        return reader.number(
            name,
            default,
            minimum=spec.minimum,
            maximum=spec.maximum,
        )
    if isinstance(value_type, type) and issubclass(value_type, enum.StrEnum):
        members = tuple(member.value for member in value_type)
        return value_type(reader.choice(name, default.value, members))
    if value_type is str:
        if spec.choices is not None:
            return reader.choice(name, default, spec.choices)
        return reader.text(name, default)
    if _optional_of(value_type) is Secret:
        return reader.optional_secret(name)
    if _optional_of(value_type) is str:
        return reader.optional_text(name)
    raise TypeError(f"setting {name}: unsupported type {value_type!r}")


def _optional_of(value_type: Any) -> Any:
    """``X`` for ``X | None``, else ``None``."""
    if isinstance(value_type, types.UnionType) or typing.get_origin(value_type) is typing.Union:
        members = [arg for arg in typing.get_args(value_type) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return None


def _is_settings_class(value_type: Any) -> bool:
    return (
        isinstance(value_type, type)
        and dataclasses.is_dataclass(value_type)
        and any(_METADATA_KEY in item.metadata for item in dataclasses.fields(value_type))
    )


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = [
    "DeclaredSetting",
    "Secret",
    "SettingSpec",
    "SettingsError",
    "declared",
    "load",
    "setting",
]
