"""Every metric the chart's alerts and dashboard name is one the services export, with the label
names the expressions use: ingest and a processor run as processes (as their containers do)
against the suite's broker, a callback goes through both, and each one's /metrics is read.

The processor provisions its topics before it serves HTTP, so a broker is needed. Family names
come from the ``# TYPE`` lines, which a labelled metric has before its first child exists;
label names come from the metrics' declarations (a family without children shows none)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.metrics import MetricWrapperBase

import ingest.metrics.defs
import processor.metrics
from tests.callback_fixtures import valid_body
from tests.kafka_helpers import unique_name, wait_until
from tests.service_process import ServiceProcess
from tools.devkafka import free_port

from .conftest import DASHBOARD, FULL, Render
from .promql import alert_rules, dashboard_queries, grouping_labels, metric_names, selectors

# What Prometheus attaches to every series it scrapes through the chart's ServiceMonitor.
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "endpoint", "container"}
# Series Prometheus makes itself for each target, exported by no service.
PROMETHEUS_OWN = {"up"}
SERIES_SUFFIXES: dict[str, tuple[str, ...]] = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)


@dataclass(frozen=True, slots=True)
class Scrapes:
    ingest: str
    processor: str

    def of(self, service: str) -> str:
        return self.ingest if service == "ingest" else self.processor


def series_names(exposition: str) -> set[str]:
    """The series names a family of each ``# TYPE`` line can have, whether or not it has
    children yet (prometheus_client names a counter's family with its ``_total``)."""
    return {
        f"{family}{suffix}"
        for family, kind in TYPE_LINE.findall(exposition)
        for suffix in SERIES_SUFFIXES.get(kind, ("",))
    }


@cache
def declared_labels() -> dict[str, set[str]]:
    """Series name -> label names, from the services' metric declarations.

    prometheus_client offers no public accessor for a metric's label names; ``_labelnames`` and
    ``_name`` have been its attributes since its first releases."""
    labels: dict[str, set[str]] = {}
    for module in (ingest.metrics.defs, processor.metrics):
        for metric in vars(module).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            kind, names = str(metric._type), set(metric._labelnames)
            family = f"{metric._name}_total" if kind == "counter" else metric._name
            for suffix in SERIES_SUFFIXES.get(kind, ("",)):
                labels[f"{family}{suffix}"] = names | ({"le"} if suffix == "_bucket" else set())
    return labels


@pytest.fixture
async def scrapes(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Scrapes]:
    """Both services' /metrics, after one callback went through ingest and the processor."""
    ingest_port, metrics_port, processor_port = free_port(), free_port(), free_port()
    common = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEETINGS_TOPIC_PREFIX": unique_name("metrics") + ".",
    }
    processor_url = f"http://127.0.0.1:{processor_port}"
    ingest_url = f"http://127.0.0.1:{ingest_port}"
    processor_service = ServiceProcess(
        "processor",
        {
            **common,
            "PROCESSOR_HTTP_HOST": "127.0.0.1",
            "PROCESSOR_HTTP_PORT": str(processor_port),
            "PROCESSOR_CREATE_TOPICS": "true",  # ingest needs the raw topic too
            "TOPIC_PARTITIONS": "2",
        },
        tmp_path / "processor.log",
        f"{processor_url}/readyz",
    )
    ingest_service = ServiceProcess(
        "ingest",
        {
            **common,
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(ingest_port),
            # As the chart runs it: /metrics on a port of its own.
            "INGEST_METRICS_PORT": str(metrics_port),
        },
        tmp_path / "ingest.log",
        f"{ingest_url}/readyz",
    )
    async with aiohttp.ClientSession() as http:
        try:
            await processor_service.start(http)
            await ingest_service.start(http)
            body = valid_body("session-started.json")
            headers = {"Content-Type": "application/json"}  # as Vonage sends
            callbacks = f"{ingest_url}/callbacks/sessions"
            async with http.post(callbacks, data=body, headers=headers) as response:
                assert response.status == 204, await response.text()
            async with http.post(callbacks, data=b"[]", headers=headers) as refused:
                assert refused.status == 400, await refused.text()

            async def processor_metrics() -> str:
                async with http.get(f"{processor_url}/metrics") as response:
                    return await response.text()

            async def applied() -> bool:
                return 'processor_records_total{outcome="applied"}' in await processor_metrics()

            await wait_until(applied, what="the processor to apply the callback", within=60)
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                ingest_metrics = await response.text()
            yield Scrapes(ingest_metrics, await processor_metrics())
            for service in (ingest_service, processor_service):
                service.terminate()
                assert await service.wait_exit() == 0, service.log()[-4000:]
        finally:
            ingest_service.kill()
            processor_service.kill()


def service_of(metric: str, job: str | None) -> str | None:
    """Which service's /metrics must have ``metric``: by its prefix, else by the job it is
    selected with (process_* metrics come from prometheus_client in both)."""
    for service in ("ingest", "processor"):
        if metric.startswith(f"{service}_") or (job is not None and service in job):
            return service
    return None


def problems_of(where: str, expression: str, scrapes: Scrapes) -> list[str]:
    problems = []
    declared = declared_labels()
    found = selectors(expression)
    jobs = {s.metric: s.matchers.get("job") for s in found}
    exported = {service: series_names(scrapes.of(service)) for service in ("ingest", "processor")}
    used_labels = set(TARGET_LABELS)
    for metric in sorted(metric_names(expression)):
        if metric in PROMETHEUS_OWN:
            continue
        service = service_of(metric, jobs.get(metric))
        if service is None:
            problems.append(f"{where}: {metric}: neither service's, and selected by no job")
            continue
        if metric not in exported[service]:
            problems.append(f"{where}: {metric} is not in {service}'s /metrics")
        used_labels |= declared.get(metric, set())
    for selector in found:
        allowed = TARGET_LABELS | declared.get(selector.metric, set())
        unknown = set(selector.matchers) - allowed
        if unknown:
            problems.append(f"{where}: {selector.metric} has no label {sorted(unknown)}")
    unknown = grouping_labels(expression) - used_labels
    if unknown:
        problems.append(f"{where}: groups by {sorted(unknown)}, which no metric of it has")
    return problems


async def test_every_metric_the_alerts_and_the_dashboard_use_is_exported(
    render: Render, scrapes: Scrapes
) -> None:
    queries = [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules(render(FULL))]
    queries += list(dashboard_queries(DASHBOARD))
    assert len(queries) > 20
    problems = [p for where, expression in queries for p in problems_of(where, expression, scrapes)]
    assert not problems, "\n".join(problems)
    # The reader found what the queries name (a reader that found nothing would pass anything).
    used = {name for _, expression in queries for name in metric_names(expression)}
    assert {
        "ingest_requests_total",
        "ingest_produce_seconds_bucket",
        "processor_consumer_lag",
        "processor_dlq_records_total",
        "processor_partition_failed",
        "process_start_time_seconds",
        "up",
    } <= used


def test_the_reader_finds_names_and_labels_however_they_are_written() -> None:
    expression = (
        'sum by (namespace, reason) (increase(processor_dlq_records_total{job="a}b", '
        'reason!~"x"}[10m] offset 5m)) / on (namespace) group_left up == 0 '
        "or vector(0) and histogram_quantile(0.9, rate(ingest_produce_seconds_bucket[5m]))"
    )
    assert metric_names(expression) == {
        "processor_dlq_records_total",
        "up",
        "ingest_produce_seconds_bucket",
    }
    (selector,) = selectors(expression)
    assert selector.metric == "processor_dlq_records_total"
    assert set(selector.matchers) == {"job", "reason"}
    assert grouping_labels(expression) == {"namespace", "reason"}
