"""Rendered manifests as Kubernetes reads them, each object with the template it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class ManifestError(ValueError):
    """The rendered text is not YAML Kubernetes would accept as the chart meant it."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as the API server's decoder sees it: timestamps stay strings, and a duplicate
    key is an error (``kubectl apply`` would silently keep one of the two values)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (one of its values would be dropped)",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One object of ``helm template`` output."""

    source: str
    """The template it came from (``meetings/templates/service.yaml``), from helm's comment."""
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name"))

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


def _source_of(lines: list[str], line: int) -> str:
    for text in reversed(lines[: line + 1]):
        if text.startswith("# Source: "):
            return text.removeprefix("# Source: ").strip()
    return ""


def load_manifests(text: str) -> list[Rendered]:
    """Every non-empty document of ``text``; ``ManifestError`` names the template at fault."""
    lines = text.splitlines()
    loader = _Loader(text)
    rendered: list[Rendered] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node() said there is one
            doc = loader.construct_document(node)
            source = _source_of(lines, node.start_mark.line)
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ManifestError(f"a document from {source or 'the chart'} is not a mapping")
            rendered.append(Rendered(source, doc))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _source_of(lines, mark.line) if mark else ""
        raise ManifestError(f"{exc.problem or exc}{f' (from {where})' if where else ''}") from None
    finally:
        loader.dispose()
    return rendered
