"""Topic provisioning: create the contract §4 topics that are missing and check the ones that exist.

Partition counts (contract §4.2). Every topic keyed by ``session_id`` (``co_partitioned`` in
``schemas.topics``) must have the raw topic's partition count, because the processor writes what
it derives from raw partition *p* to partition *p* of the session-state topic and of its own
changelog. The raw topic is authoritative: when it already exists, the missing session-keyed
topics are created with *its* count and ``TOPIC_PARTITIONS`` only applies to topics that are not
co-partitioned (a keyed topic cannot be resized without moving keys, so refusing to start would
only force the operator to copy a number the cluster already knows). If the raw topic is missing
but other session-keyed topics exist and agree, their count is used for it. Existing
session-keyed topics whose count differs are an error nobody can repair automatically:
``TopicLayoutError`` names them and the way out.

Existing topics must also have the cleanup policy of their contract (above all the two compacted
topics, the session-state topic and the processor's changelog, which it restores its sessions
from: compacted, never deleted by time), and be at least as durable as configured: replicas and
``min.insync.replicas`` (``replication``). The compacted topics are created with the
``CHANGELOG_*`` compaction configs, and existing ones that differ are corrected or warned about,
never refused (``compaction``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from processor.provisioning import admin_results, compaction, replication
from processor.settings import ProcessorSettings
from schemas.topics import ALL_TOPICS, CleanupPolicy, Retention
from servicekit.kafka import SecurityProtocol

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
"""Bound on reaching the cluster and on each admin request."""

_CLEANUP_POLICY = "cleanup.policy"
_RETENTION_MS = "retention.ms"


class TopicLayoutError(Exception):
    """The topics on the cluster do not fit contract §4 (or cannot be created); not retriable:
    an operator has to act, the message says how."""


class KafkaUnreachableError(Exception):
    """The cluster did not answer within the timeout; retriable once it is reachable again."""


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """One topic as the processor wants it."""

    name: str
    partitions: int
    cleanup_policy: CleanupPolicy
    config: Mapping[str, str]
    """Topic configs for creation (``cleanup.policy``, ``retention.ms``,
    ``min.insync.replicas``, and for compacted topics the compaction configs)."""
    co_partitioned: bool
    """Must have the raw topic's partition count (contract §4.2)."""


@dataclass(frozen=True, slots=True)
class TopicStatus:
    name: str
    partitions: int
    cleanup_policy: CleanupPolicy


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """What ``ensure_topics`` created, found and corrected."""

    bootstrap_servers: str
    co_partitions: int
    """The partition count shared by the raw topic and every session-keyed topic."""
    co_partitions_from: str
    """Where that count came from: an existing topic's name, or ``TOPIC_PARTITIONS``."""
    created: tuple[TopicStatus, ...]
    found: tuple[TopicStatus, ...]
    corrections: tuple[compaction.TopicCorrection, ...] = ()
    """Found compacted topics whose compaction configs differed: corrected, or why not."""

    def describe(self) -> list[str]:
        lines = [
            f"topics at {self.bootstrap_servers}: {len(self.created)} created, "
            f"{len(self.found)} already there; session-keyed topics have {self.co_partitions} "
            f"partitions (from {self.co_partitions_from})"
        ]
        for verb, statuses in (("created", self.created), ("found", self.found)):
            lines.extend(
                f"{verb} {status.name}: {status.partitions} partitions, "
                f"cleanup.policy={status.cleanup_policy.value}"
                for status in statuses
            )
        lines.extend(correction.describe() for correction in self.corrections)
        return lines


def _retention_ms(settings: ProcessorSettings, retention: Retention) -> int:
    """The ``retention.ms`` a topic of this retention class is created with (-1: none)."""
    match retention:
        case Retention.RAW:
            return settings.raw_retention_ms
        case Retention.DERIVED:
            return settings.derived_retention_ms
        case Retention.NONE:
            return -1


def plan_topics(settings: ProcessorSettings) -> list[TopicPlan]:
    """Every topic of contract §4 with ``settings.topic_partitions`` partitions; the raw topic
    first."""
    return [
        TopicPlan(
            name=settings.topics.of(contract),
            partitions=settings.topic_partitions,
            cleanup_policy=contract.cleanup_policy,
            config={
                _CLEANUP_POLICY: contract.cleanup_policy.value,
                _RETENTION_MS: str(_retention_ms(settings, contract.retention)),
                replication.MIN_INSYNC: str(settings.min_insync_replicas),
            }
            | (
                compaction.compaction_configs(settings)
                if contract.cleanup_policy is CleanupPolicy.COMPACT
                else {}
            ),
            co_partitioned=contract.co_partitioned,
        )
        for contract in ALL_TOPICS
    ]


async def ensure_topics(
    settings: ProcessorSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ProvisionReport:
    """Check the existing topics, create the missing ones (if ``settings.create_topics``).

    Raises ``TopicLayoutError`` when the layout is wrong or topics are missing and may not be
    created, ``KafkaUnreachableError`` when the cluster does not answer within ``timeout_s``.
    Nothing is created unless every existing topic passes the checks.
    """
    problem = replication.settings_problem(settings)
    if problem is not None:
        raise TopicLayoutError(problem)
    admin = AIOKafkaAdminClient(
        **settings.kafka.client_options(),
        client_id="meetings-processor-topics",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await admin.start()
            return await _provision(admin, settings, timeout_s)
        except (
            KafkaConnectionError,
            KafkaTimeoutError,
            RequestTimedOutError,
            TimeoutError,
        ) as exc:
            detail = str(exc) or type(exc).__name__
            protocol = settings.kafka.security_protocol
            security = (
                f", and the KAFKA_SASL_* / KAFKA_SSL_* settings for {protocol.value.upper()} "
                "(a refused login or certificate is logged above)"
                if protocol is not SecurityProtocol.PLAINTEXT
                else ""
            )
            raise KafkaUnreachableError(
                f"could not reach Kafka at {settings.kafka.bootstrap_servers} within "
                f"{timeout_s:.0f} s ({detail}); check KAFKA_BOOTSTRAP_SERVERS and that the "
                f"broker is up{security}"
            ) from exc
    finally:
        await admin.close()


async def _provision(admin: Any, settings: ProcessorSettings, timeout_s: float) -> ProvisionReport:
    plans = plan_topics(settings)
    existing = await _partition_counts(admin, [plan.name for plan in plans])
    count, source = _co_partition_count(settings, plans, existing)
    plans = [
        dataclasses.replace(plan, partitions=count) if plan.co_partitioned else plan
        for plan in plans
    ]
    if source != "TOPIC_PARTITIONS" and count != settings.topic_partitions:
        logger.warning(
            "session-keyed topics use %d partitions from existing %s, not TOPIC_PARTITIONS=%d",
            count,
            source,
            settings.topic_partitions,
        )
    found = [plan for plan in plans if plan.name in existing]
    missing = [plan for plan in plans if plan.name not in existing]
    _check_partitions(found, existing, count, source)
    configs = await _read_configs(admin, found)
    _check_cleanup_policies(found, configs)
    await _check_replication(admin, found, settings)
    if missing and not settings.create_topics:
        raise TopicLayoutError(
            "missing topics: "
            + ", ".join(f"{plan.name} ({plan.partitions} partitions)" for plan in missing)
            + "; PROCESSOR_CREATE_TOPICS is off, so create them (cleanup policies as in "
            "contract §4) or turn it on"
        )

    created, raced = await _create(admin, missing, settings)
    if raced:
        # Another client created these between our look and our create: check them like any
        # topic that was already there.
        deadline = time.monotonic() + timeout_s
        counts = await _partition_counts(admin, [plan.name for plan in raced], deadline=deadline)
        _check_partitions(raced, counts, count, source)
        configs.update(await _read_configs(admin, raced))
        _check_cleanup_policies(raced, configs)
        await _check_replication(admin, raced, settings)
        existing.update(counts)
        found.extend(raced)
    # Only once every check has passed; a difference here never refuses start.
    compacted = {
        p.name: configs[p.name] for p in found if p.cleanup_policy is CleanupPolicy.COMPACT
    }
    corrections = await compaction.check(admin, compacted, settings)
    return ProvisionReport(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        co_partitions=count,
        co_partitions_from=source,
        created=tuple(TopicStatus(p.name, p.partitions, p.cleanup_policy) for p in created),
        found=tuple(
            TopicStatus(p.name, existing[p.name], p.cleanup_policy)
            for p in sorted(found, key=plans.index)
        ),
        corrections=corrections,
    )


async def _partition_counts(
    admin: Any, names: Sequence[str], *, deadline: float | None = None
) -> dict[str, int]:
    """Partition counts of those of ``names`` that exist. With ``deadline``, wait until all of
    them are visible (a just-created topic takes a moment to reach every broker's metadata)."""
    while True:
        # Ask for all topics: a metadata request naming a missing topic auto-creates it (with
        # broker defaults) on clusters that keep auto.create.topics.enable on.
        topics = await admin.describe_topics()
        counts = {
            topic["topic"]: len(topic["partitions"])
            for topic in topics
            if topic["topic"] in names and topic["partitions"]
        }
        if deadline is None or len(counts) == len(set(names)):
            return counts
        if time.monotonic() > deadline:
            absent = sorted(set(names) - counts.keys())
            raise TopicLayoutError(f"topics {absent} exist but their metadata never showed up")
        await asyncio.sleep(0.1)  # metadata propagation poll


def _co_partition_count(
    settings: ProcessorSettings, plans: Sequence[TopicPlan], existing: Mapping[str, int]
) -> tuple[int, str]:
    """The partition count of the session-keyed topics, and which topic (or setting) set it."""
    # The raw topic comes first in ``plans``, so it wins whenever it exists.
    for plan in plans:
        if plan.co_partitioned and plan.name in existing:
            # _check_partitions reports any other existing topic that disagrees with this one.
            return existing[plan.name], plan.name
    return settings.topic_partitions, "TOPIC_PARTITIONS"


def _check_partitions(
    found: Iterable[TopicPlan], existing: Mapping[str, int], count: int, source: str
) -> None:
    wrong = [
        f"{plan.name} has {existing[plan.name]}"
        for plan in found
        if plan.co_partitioned and plan.name != source and existing[plan.name] != count
    ]
    if wrong:
        raise TopicLayoutError(
            f"partition counts do not match: {source} has {count} partitions but "
            + ", ".join(wrong)
            + ". Every session-keyed topic must have the raw topic's partition count (contract "
            "§4.2: what the processor derives from raw partition p is written to partition p of "
            "the session-state topic and of its changelog). "
            f"Recreate the listed topics with {count} partitions (for the processor's changelog "
            "this discards the sessions it restores from: reset the processor's consumer group "
            "to replay the raw topic), or recreate all session-keyed topics with one count. "
            "Kafka cannot shrink a topic, and adding partitions to a keyed topic re-routes its "
            "keys."
        )


async def _read_configs(
    admin: Any, found: Sequence[TopicPlan]
) -> dict[str, compaction.TopicConfigs]:
    configs, problems = await compaction.read_configs(admin, [plan.name for plan in found])
    if problems:
        raise TopicLayoutError("; ".join(problems))
    return configs


def _check_cleanup_policies(
    found: Sequence[TopicPlan], configs: Mapping[str, compaction.TopicConfigs]
) -> None:
    policies = {
        name: {part.strip() for part in value.split(",") if part.strip()}
        for name, topic in configs.items()
        if (value := topic.values.get(_CLEANUP_POLICY))
    }
    wrong = [
        f"{plan.name} has cleanup.policy={','.join(sorted(policies.get(plan.name, ()))) or '?'}, "
        f"expected {plan.cleanup_policy.value}"
        for plan in found
        if policies.get(plan.name) != {plan.cleanup_policy.value}
    ]
    if wrong:
        raise TopicLayoutError(
            "; ".join(wrong) + ". Fix it with kafka-configs.sh --alter --entity-type topics "
            "--entity-name <topic> --add-config cleanup.policy=<expected> (the processor "
            "restores its sessions from its changelog, and the session-state topic holds each "
            "session's latest state: for either, anything but compact loses session state)."
        )


async def _check_replication(
    admin: Any, found: Sequence[TopicPlan], settings: ProcessorSettings
) -> None:
    if not found:
        return
    names = [plan.name for plan in found]
    counts = replication.replica_counts(await admin.describe_topics(), names)
    problems = replication.replication_problems(counts, settings)
    problems += await replication.min_insync_problems(admin, names, settings)
    if problems:
        raise TopicLayoutError("; ".join(problems) + replication.fix_hint(settings))


async def _create(
    admin: Any, missing: Sequence[TopicPlan], settings: ProcessorSettings
) -> tuple[list[TopicPlan], list[TopicPlan]]:
    """Create ``missing``; returns (created, created meanwhile by someone else)."""
    if not missing:
        return [], []
    replication_factor = settings.topic_replication_factor
    response = await admin.create_topics(
        [
            NewTopic(
                plan.name,
                num_partitions=plan.partitions,
                replication_factor=replication_factor,
                topic_configs=dict(plan.config),
            )
            for plan in missing
        ]
    )
    outcomes = admin_results.creation_outcomes(response)
    created: list[TopicPlan] = []
    raced: list[TopicPlan] = []
    failed: list[str] = []
    errors: dict[str, type[Exception]] = {}
    for plan in missing:
        outcome = outcomes.get(plan.name)
        if outcome is None or outcome.error is None:
            created.append(plan)
            logger.debug(
                "created topic %s with %d partitions (%s)", plan.name, plan.partitions, plan.config
            )
        elif outcome.failed_with(TopicAlreadyExistsError):
            logger.debug("topic %s was created meanwhile by another client", plan.name)
            raced.append(plan)
        else:
            failed.append(f"{plan.name}: {outcome.describe_error()}")
            errors[outcome.error.__name__] = outcome.error
    if failed:
        brokers = len((await admin.describe_cluster())["brokers"])
        explained = [
            text
            for _, error in sorted(errors.items())
            if (text := replication.creation_problem(error, brokers, settings)) is not None
        ]
        raise TopicLayoutError(
            "; ".join(explained)
            + ": " * bool(explained)
            + "could not create topics ("
            + "; ".join(failed)
            + f"); replication factor {replication_factor} (TOPIC_REPLICATION_FACTOR), "
            f"min.insync.replicas {settings.min_insync_replicas}"
        )
    return created, raced
