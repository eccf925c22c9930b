"""How much history a restore reads: the compaction configs of the two compacted topics.

A partition's sessions are restored by reading its changelog from the beginning, so a restore
reads whatever compaction has not removed yet. With the broker defaults that is nearly every
revision ever written, for days: compaction never cleans the active segment, which rolls only at
1 GiB or after 7 days, and then waits until half of the cleanable log is superseded revisions.
So the compacted topics (the changelog and the session-state topic) are created with the
``CHANGELOG_*`` settings (``segment.ms``, ``segment.bytes``, ``min.cleanable.dirty.ratio``,
``delete.retention.ms``), and existing ones are checked: a topic that differs is corrected when
the processor manages the topics (``PROCESSOR_CREATE_TOPICS``), else a warning says how to fix it.
These configs decide what a restore costs, not what it restores, so a difference (or a refused
correction) never stops the processor.

A correction is a read-modify-write. aiokafka offers only AlterConfigs, which replaces a topic's
whole set of dynamic configs: every config it does not name reverts to the broker's default (the
topic would lose its ``retention.ms=-1``, ``min.insync.replicas``, even ``cleanup.policy``). So the
topic's dynamic configs as read (source DYNAMIC_TOPIC_CONFIG, which DescribeConfigs reports from
version 1; aiokafka sends version 2 to Kafka 4) are sent back with the corrections merged in. An
alteration someone else makes between that read and the write is lost; the window is the time
between the start-up checks and the correction, a few round trips.

``read_configs`` also serves the cleanup-policy check of ``layout``: one read of each existing
topic's configs answers both.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import UnknownTopicOrPartitionError

from processor.provisioning import admin_results
from processor.settings import ProcessorSettings

logger = logging.getLogger(__name__)

SEGMENT_MS = "segment.ms"
SEGMENT_BYTES = "segment.bytes"
MIN_CLEANABLE_DIRTY_RATIO = "min.cleanable.dirty.ratio"
DELETE_RETENTION_MS = "delete.retention.ms"

SETTING_OF = {
    SEGMENT_MS: "CHANGELOG_SEGMENT_MS",
    SEGMENT_BYTES: "CHANGELOG_SEGMENT_BYTES",
    MIN_CLEANABLE_DIRTY_RATIO: "CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO",
    DELETE_RETENTION_MS: "CHANGELOG_DELETE_RETENTION_MS",
}
"""The setting each topic config comes from."""

_READ_ATTEMPTS = 20


def compaction_configs(settings: ProcessorSettings) -> dict[str, str]:
    """The four configs every compacted topic is created with and corrected to."""
    return {
        SEGMENT_MS: str(settings.changelog_segment_ms),
        SEGMENT_BYTES: str(settings.changelog_segment_bytes),
        MIN_CLEANABLE_DIRTY_RATIO: str(settings.changelog_min_cleanable_dirty_ratio),
        DELETE_RETENTION_MS: str(settings.changelog_delete_retention_ms),
    }


@dataclass(frozen=True, slots=True)
class TopicConfigs:
    """One topic's configs as DescribeConfigs reports them (``None``: a sensitive value)."""

    values: Mapping[str, str | None]
    """Every config's effective value, whatever its source."""
    dynamic: Mapping[str, str | None]
    """The configs set on the topic itself: what AlterConfigs replaces."""


async def read_configs(
    admin: Any, names: Sequence[str]
) -> tuple[dict[str, TopicConfigs], list[str]]:
    """Every config of each named (existing) topic, and a sentence per topic that could not be
    read. Asks again while a broker does not know a just-created topic yet."""
    if not names:
        return {}, []
    resources: list[admin_results.Outcome] = []
    for _ in range(_READ_ATTEMPTS):
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        resources = admin_results.config_outcomes(responses)
        # A broker asked about a topic created a moment ago may not know it yet (the
        # controller announces new topics to each broker in turn).
        if not any(r.failed_with(UnknownTopicOrPartitionError) for r in resources):
            break
        await asyncio.sleep(0.1)  # metadata propagation poll, as in processor.provisioning
    configs: dict[str, TopicConfigs] = {}
    problems: list[str] = []
    for resource in resources:
        if resource.error is not None:
            problems.append(
                f"could not read the configs of {resource.name}: {resource.describe_error()}"
            )
            continue
        configs[resource.name] = TopicConfigs(
            values={entry.name: entry.value for entry in resource.entries},
            dynamic={
                entry.name: entry.value
                for entry in resource.entries
                if entry.source == admin_results.DYNAMIC_TOPIC_CONFIG
            },
        )
    return configs, problems


@dataclass(frozen=True, slots=True)
class ConfigChange:
    config: str
    old: str
    new: str


class Outcome(enum.Enum):
    CORRECTED = "corrected"
    LEFT = "left"
    """``PROCESSOR_CREATE_TOPICS`` is off: the topics are someone else's to change."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TopicCorrection:
    """A compacted topic whose compaction configs differed from the settings."""

    topic: str
    changes: tuple[ConfigChange, ...]
    outcome: Outcome
    error: str | None = None

    def describe(self) -> str:
        match self.outcome:
            case Outcome.CORRECTED:
                changed = ", ".join(f"{c.config} {c.old} -> {c.new}" for c in self.changes)
                return f"corrected {self.topic}: {changed}"
            case Outcome.LEFT:
                return (
                    f"left {self.topic} as it is (PROCESSOR_CREATE_TOPICS is off): {self._wanted()}"
                )
            case Outcome.FAILED:
                return f"could not correct {self.topic} ({self.error}): {self._wanted()}"

    def _wanted(self) -> str:
        return ", ".join(
            f"{c.config}={c.old} ({SETTING_OF[c.config]}={c.new})" for c in self.changes
        )


def differences(configs: TopicConfigs, wanted: Mapping[str, str]) -> tuple[ConfigChange, ...]:
    """The configs whose effective value is not the wanted one."""
    return tuple(
        ConfigChange(name, configs.values.get(name) or "?", value)
        for name, value in wanted.items()
        if not _same(configs.values.get(name), value)
    )


def _same(current: str | None, wanted: str) -> bool:
    """Equal as numbers: ``0.10`` is ``0.1`` (every config here is a number)."""
    if current is None:
        return False
    try:
        return Decimal(current) == Decimal(wanted)
    except InvalidOperation:
        return False


async def check(
    admin: Any, configs: Mapping[str, TopicConfigs], settings: ProcessorSettings
) -> tuple[TopicCorrection, ...]:
    """Compare the compacted topics in ``configs`` with the settings; correct those that differ
    if ``settings.create_topics``, else leave them. Logs a warning per differing topic; never
    raises for a difference or a refused correction (a lost connection still propagates)."""
    wanted = compaction_configs(settings)
    differing = {
        name: changes for name, topic in configs.items() if (changes := differences(topic, wanted))
    }
    if not differing:
        return ()
    if settings.create_topics:
        errors = await _correct(admin, {name: configs[name] for name in differing}, wanted)
        corrections = [
            TopicCorrection(name, changes, Outcome.FAILED, errors[name])
            if errors[name] is not None
            else TopicCorrection(name, changes, Outcome.CORRECTED)
            for name, changes in differing.items()
        ]
    else:
        corrections = [
            TopicCorrection(name, changes, Outcome.LEFT) for name, changes in differing.items()
        ]
    for correction in corrections:
        if correction.outcome is Outcome.CORRECTED:
            logger.warning("%s (CHANGELOG_* settings)", correction.describe())
        else:
            logger.warning(
                "%s; restores read superseded revisions until compaction catches up. "
                "Fix it with %s",
                correction.describe(),
                _fix_command(settings, correction.topic, correction.changes),
            )
    return tuple(corrections)


async def _correct(
    admin: Any, configs: Mapping[str, TopicConfigs], wanted: Mapping[str, str]
) -> dict[str, str | None]:
    """Send each topic its dynamic configs with ``wanted`` merged in (AlterConfigs replaces
    them all); the error per topic, ``None`` once corrected.

    DescribeConfigs does not return a sensitive value, so it could not be sent back: a topic with
    one is left alone rather than stripped of it (Kafka has no sensitive topic config today)."""
    errors: dict[str, str | None] = {}
    resources: list[ConfigResource] = []
    for name, topic in configs.items():
        hidden = sorted(config for config, value in topic.dynamic.items() if value is None)
        if hidden:
            errors[name] = f"its dynamic configs {', '.join(hidden)} cannot be read back"
            continue
        errors[name] = None
        resources.append(
            ConfigResource(ConfigResourceType.TOPIC, name, {**topic.dynamic, **wanted})
        )
    if resources:
        for outcome in admin_results.config_outcomes(await admin.alter_configs(resources)):
            if outcome.error is not None:
                errors[outcome.name] = outcome.describe_error()
    return errors


def _fix_command(settings: ProcessorSettings, topic: str, changes: Sequence[ConfigChange]) -> str:
    added = ",".join(f"{change.config}={change.new}" for change in changes)
    return (
        f"kafka-configs.sh --bootstrap-server {settings.kafka.bootstrap_servers} --alter "
        f"--entity-type topics --entity-name {topic} --add-config {added}"
    )
