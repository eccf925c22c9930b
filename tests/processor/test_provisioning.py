"""Topic provisioning against the real broker: creation, idempotence, layout checks, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from processor.provisioning import (
    KafkaUnreachableError,
    ProvisionReport,
    TopicLayoutError,
    ensure_topics,
    plan_topics,
)
from processor.provisioning.cli import main
from processor.provisioning.compaction import (
    Outcome,
    TopicConfigs,
    TopicCorrection,
    check,
    differences,
)
from processor.settings import ProcessorSettings
from schemas.topics import ALL_TOPICS, TopicNames
from servicekit.kafka import KafkaSettings
from tests.kafka_helpers import create_topic, unique_name, wait_until
from tools.devkafka.broker import free_port

RAW_RETENTION_MS = 3_600_000
DERIVED_RETENTION_MS = 7_200_000
COMPACT = {"cleanup.policy": "compact"}
COMPACTION = {
    "segment.ms": "60000",
    "segment.bytes": "16777216",
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "3600000",
}
"""The compaction configs of the default settings."""
DYNAMIC_TOPIC_CONFIG = 1


@dataclass(frozen=True)
class Layout:
    """One topic as the cluster reports it."""

    partitions: int
    cleanup_policy: str
    retention_ms: str


def make_settings(bootstrap: str, **overrides: Any) -> ProcessorSettings:
    values: dict[str, Any] = {
        "kafka": KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=unique_name("t") + "."),
        "topic_partitions": 3,
        "raw_retention_ms": RAW_RETENTION_MS,
        "derived_retention_ms": DERIVED_RETENTION_MS,
    }
    return dataclasses.replace(ProcessorSettings(), **(values | overrides))


def all_names(settings: ProcessorSettings) -> list[str]:
    return [settings.topics.of(topic) for topic in ALL_TOPICS]


def names_of(report: ProvisionReport, which: str) -> set[str]:
    return {status.name for status in getattr(report, which)}


async def cluster_layout(bootstrap: str, names: list[str]) -> dict[str, Layout]:
    """The cluster's view of those of ``names`` that exist (never auto-creating any)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        counts = {
            topic["topic"]: len(topic["partitions"])
            for topic in await admin.describe_topics()
            if topic["topic"] in names and topic["partitions"]
        }
        if not counts:
            return {}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in counts]
        )
    finally:
        await admin.close()
    layout: dict[str, Layout] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            name = resource["resource_name"]
            layout[name] = Layout(counts[name], configs["cleanup.policy"], configs["retention.ms"])
    return layout


async def dynamic_configs(bootstrap: str, name: str) -> dict[str, str | None]:
    """The configs set on the topic itself (DescribeConfigs source DYNAMIC_TOPIC_CONFIG)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    return {
        entry["config_names"]: entry["config_value"]
        for response in responses
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
        if entry["config_source"] == DYNAMIC_TOPIC_CONFIG
    }


async def settled_configs(bootstrap: str, name: str, expected: dict[str, str]) -> None:
    """Wait until the topic's dynamic configs include ``expected``."""

    async def applied() -> bool:
        configs = await dynamic_configs(bootstrap, name)
        return all(configs.get(key) == value for key, value in expected.items())

    await wait_until(applied, what=f"{expected} on {name}")


async def settled_layout(bootstrap: str, names: list[str]) -> dict[str, Layout]:
    """The layout once every one of ``names`` shows up in the cluster's metadata."""
    seen: dict[str, Layout] = {}

    async def all_visible() -> bool:
        seen.update(await cluster_layout(bootstrap, names))
        return set(names) <= seen.keys()

    await wait_until(all_visible, what=f"topics {names} in the metadata")
    return seen


async def precreate(
    bootstrap: str, name: str, *, partitions: int, config: dict[str, str] | None = None
) -> None:
    """Create a topic as an operator would have, and wait until the metadata shows it."""
    await create_topic(bootstrap, name, partitions=partitions, config=config)
    await settled_layout(bootstrap, [name])


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """The CLI configures the root logger as an entry point does; undo that after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_plan_covers_every_spec_topic_with_its_policy_and_retention() -> None:
    settings = make_settings("unused:9092", topic_partitions=5)
    names = settings.topics
    plans = {plan.name: plan for plan in plan_topics(settings)}

    assert sorted(plans) == sorted(all_names(settings))
    assert {plan.partitions for plan in plans.values()} == {5}
    assert {name for name, plan in plans.items() if plan.co_partitioned} == {
        names.raw,
        names.session_state,
        names.changelog,
        names.sessions,
        names.participants,
    }
    for name in (names.session_state, names.changelog):
        assert (
            plans[name].config
            == {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "min.insync.replicas": "1",
            }
            | COMPACTION
        )
    for name in (names.raw, names.dlq):
        assert plans[name].config == {
            "cleanup.policy": "delete",
            "retention.ms": str(RAW_RETENTION_MS),
            "min.insync.replicas": "1",
        }
    for name in (names.sessions, names.participants, names.recordings, names.rooms):
        assert plans[name].config == {
            "cleanup.policy": "delete",
            "retention.ms": str(DERIVED_RETENTION_MS),
            "min.insync.replicas": "1",
        }


@pytest.mark.parametrize(
    ("replication", "min_insync", "effective"),
    [(1, 0, 1), (2, 0, 1), (3, 0, 2), (5, 0, 4), (3, 3, 3), (3, 1, 1)],
)
def test_min_insync_defaults_to_one_less_than_the_replication(
    replication: int, min_insync: int, effective: int
) -> None:
    settings = make_settings(
        "unused:9092", topic_replication_factor=replication, topic_min_insync=min_insync
    )
    assert settings.min_insync_replicas == effective
    assert {plan.config["min.insync.replicas"] for plan in plan_topics(settings)} == {
        str(effective)
    }


async def test_min_insync_above_the_replication_is_refused_before_asking_kafka() -> None:
    settings = make_settings(
        f"127.0.0.1:{free_port()}", topic_replication_factor=2, topic_min_insync=3
    )
    with pytest.raises(TopicLayoutError, match="TOPIC_MIN_INSYNC=3 is more than"):
        await ensure_topics(settings, timeout_s=5)


async def test_creates_every_topic_with_partitions_policy_and_retention(
    kafka_bootstrap: str,
) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics

    report = await ensure_topics(settings)

    assert names_of(report, "created") == set(all_names(settings))
    assert report.found == ()
    assert (report.co_partitions, report.co_partitions_from) == (3, "TOPIC_PARTITIONS")
    layout = await settled_layout(kafka_bootstrap, all_names(settings))
    assert {name: topic.partitions for name, topic in layout.items()} == dict.fromkeys(
        all_names(settings), 3
    )
    assert layout[names.session_state] == Layout(3, "compact", "-1")
    assert layout[names.raw] == Layout(3, "delete", str(RAW_RETENTION_MS))
    assert layout[names.dlq] == Layout(3, "delete", str(RAW_RETENTION_MS))
    for name in (names.sessions, names.participants, names.recordings, names.rooms):
        assert layout[name] == Layout(3, "delete", str(DERIVED_RETENTION_MS))
    for name in (names.session_state, names.changelog):
        assert (
            await dynamic_configs(kafka_bootstrap, name)
            == {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "min.insync.replicas": "1",
            }
            | COMPACTION
        )
    assert "segment.ms" not in await dynamic_configs(kafka_bootstrap, names.raw)
    assert report.corrections == ()


async def test_second_run_finds_every_topic_and_creates_none(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap)
    await ensure_topics(settings)
    await settled_layout(kafka_bootstrap, all_names(settings))

    again = await ensure_topics(settings)

    assert again.created == ()
    assert again.corrections == ()
    assert [status.name for status in again.found] == all_names(settings)
    assert {status.partitions for status in again.found} == {3}
    lines = again.describe()
    assert "0 created, 8 already there" in lines[0]
    assert f"found {settings.topics.session_state}: 3 partitions, cleanup.policy=compact" in lines


async def test_concurrent_runs_create_each_topic_once(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap)

    first, second = await asyncio.gather(ensure_topics(settings), ensure_topics(settings))

    assert names_of(first, "created").isdisjoint(names_of(second, "created"))
    assert names_of(first, "created") | names_of(second, "created") == set(all_names(settings))
    for report in (first, second):
        assert names_of(report, "created") | names_of(report, "found") == set(all_names(settings))
        assert {status.partitions for status in report.created + report.found} == {3}


async def test_existing_raw_topic_sets_the_count_of_the_session_keyed_topics(
    kafka_bootstrap: str,
) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics
    await precreate(kafka_bootstrap, names.raw, partitions=5)

    report = await ensure_topics(settings)

    assert (report.co_partitions, report.co_partitions_from) == (5, names.raw)
    assert names_of(report, "found") == {names.raw}
    assert f"(from {names.raw})" in report.describe()[0]
    layout = await settled_layout(kafka_bootstrap, all_names(settings))
    assert {name: topic.partitions for name, topic in layout.items()} == {
        names.raw: 5,
        names.session_state: 5,
        names.changelog: 5,
        names.sessions: 5,
        names.participants: 5,
        # Not keyed by session_id: TOPIC_PARTITIONS applies.
        names.dlq: 3,
        names.recordings: 3,
        names.rooms: 3,
    }


async def test_existing_state_topic_without_raw_sets_the_raw_count(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics
    await precreate(kafka_bootstrap, names.session_state, partitions=2, config=COMPACT)

    report = await ensure_topics(settings)

    assert (report.co_partitions, report.co_partitions_from) == (2, names.session_state)
    layout = await settled_layout(kafka_bootstrap, all_names(settings))
    assert layout[names.raw].partitions == 2
    assert layout[names.participants].partitions == 2


async def test_state_topic_with_another_count_than_raw_is_refused(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics
    await precreate(kafka_bootstrap, names.raw, partitions=3)
    await precreate(kafka_bootstrap, names.session_state, partitions=4, config=COMPACT)

    with pytest.raises(TopicLayoutError) as caught:
        await ensure_topics(settings)

    message = str(caught.value)
    assert f"{names.raw} has 3 partitions" in message
    assert f"{names.session_state} has 4" in message
    assert "Recreate" in message
    # Nothing was created next to the broken layout.
    layout = await settled_layout(kafka_bootstrap, [names.raw, names.session_state])
    assert set(layout) == {names.raw, names.session_state}
    assert await cluster_layout(kafka_bootstrap, all_names(settings)) == layout


async def test_state_topic_that_is_not_compacted_is_refused(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics
    await precreate(kafka_bootstrap, names.session_state, partitions=3)

    with pytest.raises(TopicLayoutError) as caught:
        await ensure_topics(settings)

    message = str(caught.value)
    assert f"{names.session_state} has cleanup.policy=delete, expected compact" in message
    assert names.raw not in await cluster_layout(kafka_bootstrap, all_names(settings))


async def test_existing_compacted_topic_is_corrected_and_keeps_its_other_configs(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(kafka_bootstrap)
    names = settings.topics
    # As an operator (or an older version) made it: broker-default segments and dirty ratio
    # spelled out, configs of its own that the processor never sets, and segment.bytes and
    # delete.retention.ms left to the broker's defaults.
    own = {"cleanup.policy": "compact", "retention.ms": "-1", "max.message.bytes": "2000000"}
    await precreate(
        kafka_bootstrap,
        names.changelog,
        partitions=3,
        config=own | {"segment.ms": "604800000", "min.cleanable.dirty.ratio": "0.5"},
    )

    with caplog.at_level(logging.WARNING, logger="processor.provisioning.compaction"):
        report = await ensure_topics(settings)

    # AlterConfigs replaces every dynamic config: the ones it was not asked to change survive
    # only because they were read and sent back. (The broker applies an alteration a moment
    # after acknowledging it.)
    await settled_configs(kafka_bootstrap, names.changelog, {"segment.ms": "60000"})
    assert await dynamic_configs(kafka_bootstrap, names.changelog) == own | COMPACTION
    assert [(c.topic, c.outcome) for c in report.corrections] == [
        (names.changelog, Outcome.CORRECTED)
    ]
    changed = {c.config: (c.old, c.new) for c in report.corrections[0].changes}
    assert changed == {
        "segment.ms": ("604800000", "60000"),
        "segment.bytes": ("1073741824", "16777216"),
        "min.cleanable.dirty.ratio": ("0.5", "0.1"),
        "delete.retention.ms": ("86400000", "3600000"),
    }
    line = (
        f"corrected {names.changelog}: segment.ms 604800000 -> 60000, segment.bytes 1073741824 "
        "-> 16777216, min.cleanable.dirty.ratio 0.5 -> 0.1, delete.retention.ms 86400000 -> "
        "3600000"
    )
    assert line in report.describe()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"{line} (CHANGELOG_* settings)")
    ]

    again = await ensure_topics(settings)
    assert again.corrections == ()


async def test_compacted_topics_are_only_warned_about_without_create_topics(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(kafka_bootstrap, create_topics=False)
    names = settings.topics
    await ensure_topics(
        dataclasses.replace(
            settings,
            create_topics=True,
            changelog_segment_ms=600_000,
            changelog_min_cleanable_dirty_ratio=0.5,
        )
    )
    await settled_layout(kafka_bootstrap, all_names(settings))
    before = await dynamic_configs(kafka_bootstrap, names.changelog)
    assert before["segment.ms"] == "600000"

    with caplog.at_level(logging.WARNING, logger="processor.provisioning.compaction"):
        report = await ensure_topics(settings)

    assert {(c.topic, c.outcome) for c in report.corrections} == {
        (names.session_state, Outcome.LEFT),
        (names.changelog, Outcome.LEFT),
    }
    assert await dynamic_configs(kafka_bootstrap, names.changelog) == before
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    for name in (names.session_state, names.changelog):
        assert (
            f"left {name} as it is (PROCESSOR_CREATE_TOPICS is off): segment.ms=600000 "
            "(CHANGELOG_SEGMENT_MS=60000), min.cleanable.dirty.ratio=0.5 "
            "(CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO=0.1); restores read superseded revisions "
            f"until compaction catches up. Fix it with kafka-configs.sh --bootstrap-server "
            f"{kafka_bootstrap} --alter --entity-type topics --entity-name {name} --add-config "
            "segment.ms=60000,min.cleanable.dirty.ratio=0.1"
        ) in warnings
    assert f"left {names.changelog} as it is" in "\n".join(report.describe())


def test_configs_are_compared_as_numbers() -> None:
    configs = TopicConfigs(
        values=COMPACTION | {"min.cleanable.dirty.ratio": "0.10", "segment.ms": "60000.0"},
        dynamic={},
    )
    assert differences(configs, COMPACTION) == ()
    unset = TopicConfigs(values={}, dynamic={})
    assert [change.old for change in differences(unset, COMPACTION)] == ["?"] * 4


@dataclass
class _Response:
    obj: dict[str, Any]

    def to_object(self) -> dict[str, Any]:
        return self.obj


class _RefusingAdmin:
    """Answers every AlterConfigs with an error, as a broker without the ACL would."""

    def __init__(self) -> None:
        self.altered: list[str] = []

    async def alter_configs(self, resources: list[ConfigResource]) -> list[_Response]:
        self.altered += [resource.name for resource in resources]
        return [
            _Response(
                {
                    "resources": [
                        {
                            "error_code": 29,
                            "error_message": "Topic authorization failed.",
                            "resource_name": resource.name,
                        }
                        for resource in resources
                    ]
                }
            )
        ]


async def test_a_refused_or_unsafe_correction_is_reported_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings("unused:9092")
    old = {"segment.ms": "604800000"}
    configs = {
        "refused": TopicConfigs(values=COMPACTION | old, dynamic=old),
        # A value DescribeConfigs hides could not be sent back: AlterConfigs would drop it.
        "hidden": TopicConfigs(values=COMPACTION | old, dynamic=old | {"secret": None}),
    }
    admin = _RefusingAdmin()

    with caplog.at_level(logging.WARNING, logger="processor.provisioning.compaction"):
        corrections = await check(admin, configs, settings)

    assert admin.altered == ["refused"]
    assert [(c.topic, c.outcome, c.error) for c in corrections] == [
        ("refused", Outcome.FAILED, "error 29 Topic authorization failed."),
        ("hidden", Outcome.FAILED, "its dynamic configs secret cannot be read back"),
    ]
    assert isinstance(corrections[0], TopicCorrection)
    assert corrections[0].describe() == (
        "could not correct refused (error 29 Topic authorization failed.): "
        "segment.ms=604800000 (CHANGELOG_SEGMENT_MS=60000)"
    )
    assert len(caplog.records) == 2
    assert all("--add-config segment.ms=60000" in r.getMessage() for r in caplog.records)


async def test_missing_topics_without_create_topics_are_listed(kafka_bootstrap: str) -> None:
    settings = make_settings(kafka_bootstrap, create_topics=False)
    names = settings.topics
    await precreate(kafka_bootstrap, names.raw, partitions=3)

    with pytest.raises(TopicLayoutError) as caught:
        await ensure_topics(settings)

    message = str(caught.value)
    assert "PROCESSOR_CREATE_TOPICS" in message
    for name in all_names(settings):
        if name == names.raw:
            assert f"{name} (" not in message
        else:
            assert f"{name} (3 partitions)" in message
    assert set(await cluster_layout(kafka_bootstrap, all_names(settings))) == {names.raw}


async def test_unreachable_kafka_is_reported_within_the_timeout() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    settings = make_settings(bootstrap)

    with pytest.raises(KafkaUnreachableError, match=re.escape(f"{bootstrap} within 5 s")):
        await ensure_topics(settings, timeout_s=5)


@pytest.mark.usefixtures("restore_root_logging")
def test_cli_creates_topics_then_reports_them_found(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = unique_name("cli") + "."
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "2",
    }
    names = TopicNames.with_prefix(prefix)

    assert main([], environ) == 0
    out = capsys.readouterr().out
    assert "8 created, 0 already there" in out
    assert f"created {names.session_state}: 2 partitions, cleanup.policy=compact" in out
    asyncio.run(settled_layout(kafka_bootstrap, [names.raw, names.rooms]))

    assert main([], environ) == 0
    assert f"found {names.raw}: 2 partitions, cleanup.policy=delete" in capsys.readouterr().out


@pytest.mark.usefixtures("restore_root_logging")
def test_cli_exits_2_on_a_layout_error(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = unique_name("cli") + "."
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEETINGS_TOPIC_PREFIX": prefix,
        "PROCESSOR_CREATE_TOPICS": "false",
    }

    assert main([], environ) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"missing topics: {prefix}callbacks.raw" in captured.err


def test_cli_exits_2_on_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {"TOPIC_PARTITIONS": "0"}) == 2
    assert "TOPIC_PARTITIONS=0 must be at least 1" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_root_logging")
def test_cli_exits_1_when_kafka_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"

    assert main(["--timeout", "5"], {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}) == 1
    assert f"could not reach Kafka at {bootstrap} within 5 s" in capsys.readouterr().err
