"""Strict schemas: Kubernetes' own (bundled in kubernetes-validate) and those of CRDs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as bundled
from referencing import Registry, Resource

from tools.chartcheck.manifests import load_manifests

_OBJECT_META = "/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.sub(r"^v", "", version).split(".")[:2]
    return int(major), int(minor)


def bundled_versions() -> list[str]:
    """The Kubernetes versions whose schemas kubernetes-validate bundles, oldest first."""
    return [f"{m}.{n}" for m, n in sorted({_minor(v) for v in bundled.all_versions()})]


def resolve_version(version: str) -> str:
    """``latest`` or ``1.29.0`` -> the major.minor whose schemas are bundled."""
    known = bundled_versions()
    wanted = known[-1] if version == "latest" else "{}.{}".format(*_minor(version))
    if wanted not in known:
        raise ValueError(f"Kubernetes {version} is not bundled: {known[0]} to {known[-1]}")
    return wanted


def _builtin_group(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


def _crd_schema(node: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema, strict: objects with properties allow no others."""
    if isinstance(node, list):
        return [_crd_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: _crd_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _crd_schema(value)
        elif not (key.startswith("x-kubernetes-") or key in ("nullable", "format", "description")):
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crds(paths: Iterable[Path]) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> JSON Schema, for every served version of every CRD in ``paths``."""
    schemas: dict[tuple[str, str], Any] = {}
    for path in paths:
        for rendered in load_manifests(path.read_text(encoding="utf-8")):
            if rendered.kind != "CustomResourceDefinition":
                continue
            spec = rendered.obj["spec"]
            kind = spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                api_version = f"{spec['group']}/{version['name']}"
                schema = _crd_schema(version["schema"]["openAPIV3Schema"])
                properties = schema.setdefault("properties", {})
                properties["apiVersion"] = {"enum": [api_version]}
                properties["kind"] = {"enum": [kind]}
                properties["metadata"] = {"$ref": _OBJECT_META}
                schema["required"] = sorted({*schema.get("required", []), "metadata"})
                schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
                schema["$id"] = (
                    f"https://kubernetes.io/api/crd/{kind.lower()}-{version['name']}.json"
                )
                schemas[(api_version, kind)] = schema
    return schemas


class SchemaSet:
    """Validates objects for one Kubernetes version and a set of CRDs."""

    def __init__(self, kube_version: str, crds: dict[tuple[str, str], Any]) -> None:
        self.kube_version = resolve_version(kube_version)
        self._dir = f"kubernetes-json-schema/v{self._bundled_release()}-local-strict"
        definitions = bundled.schema_contents(f"{self._dir}/_definitions.json", self.kube_version)
        self._registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
        self._crds = crds

    def _bundled_release(self) -> str:
        releases: list[str] = bundled.all_versions()
        return next(v for v in releases if _minor(v) == _minor(self.kube_version))

    def _builtin(self, api_version: str, kind: str) -> Any | None:
        short = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        try:
            return bundled.schema_contents(
                f"{self._dir}/{kind.lower()}-{short}.json", self.kube_version
            )
        except FileNotFoundError:
            return None

    def errors(self, obj: dict[str, Any]) -> tuple[str, list[str]] | None:
        """(what it was checked against, its errors); None for a custom resource without CRD."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return "", ["apiVersion and kind must both be set"]
        if _builtin_group(api_version):
            schema = self._builtin(api_version, kind)
            if schema is None:
                return "", [f"Kubernetes {self.kube_version} serves no {kind} in {api_version}"]
            against = f"Kubernetes {self.kube_version}"
        else:
            schema = self._crds.get((api_version, kind))
            if schema is None:
                return None
            against = f"the {kind} CRD"
        registry = self._registry
        if "$id" in schema:
            registry = Resource.from_contents(schema) @ registry
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        found: list[str] = []
        for error in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path]):
            path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            message = str(error.message)
            if error.context:  # oneOf / anyOf: what the alternatives wanted
                message += " (" + "; ".join(sorted({str(c.message) for c in error.context})) + ")"
            found.append(f"{path}: {message}")
        return against, found
