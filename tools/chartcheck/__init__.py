"""Offline check of the Helm chart: lint, render, validate every object.

``python -m tools.chartcheck deploy/helm/meetings`` runs ``helm lint --strict`` and ``helm
template`` for the chart's default values and every ``ci/*.yaml``, for each Kubernetes version
asked for, and validates each rendered object against that version's strict OpenAPI schema
(kubernetes-validate), KEDA and Prometheus-operator objects against their CRDs, plus rules the API
server enforces that no schema expresses (``rules``). With ``--promtool``, the alerting rules of
every rendered PrometheusRule go through ``promtool check rules``, and the chart's
``rules-tests/<case>.yaml`` through ``promtool test rules`` (``promtool``). ``make chart`` (part
of ``make test``) runs it with a helm, a promtool and CRDs fetched once into the cache.
"""

from tools.chartcheck.manifests import Rendered, load_manifests
from tools.chartcheck.rules import semantic_errors
from tools.chartcheck.schemas import SchemaSet

__all__ = ["Rendered", "SchemaSet", "load_manifests", "semantic_errors"]
