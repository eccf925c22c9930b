"""What ``AIOKafkaAdminClient``'s answers say, read in one place.

``create_topics``, ``describe_configs`` and ``alter_configs`` return the broker's responses as
aiokafka documents them ("appropriate version of the ...Response class"); their fields are the
Kafka protocol's (``error_code``, ``resource_name``, ``config_entries``, ...), read here with
the responses' ``to_object()``. Error codes become ``aiokafka.errors`` classes (``for_code``), so
callers compare with named errors, never with numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError, NoError, for_code

DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs ``config_source`` (v1+, KIP-226) of a config set on the topic itself."""


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    """``None``: a sensitive value the broker does not return."""
    source: int
    """Where the value comes from (``DYNAMIC_TOPIC_CONFIG``: the topic itself)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One topic's (resource's) part of an admin answer."""

    name: str
    error: type[KafkaError] | None
    """``None``: it succeeded."""
    code: int
    message: str | None
    entries: tuple[ConfigEntry, ...] = ()
    """DescribeConfigs only: the configs."""

    def failed_with(self, *errors: type[KafkaError]) -> bool:
        return self.error is not None and issubclass(self.error, errors)

    def describe_error(self) -> str:
        """``error 29 Topic authorization failed.`` (the broker's code and message)."""
        return f"error {self.code} {self.message or ''}".rstrip()


def _error(code: int) -> type[KafkaError] | None:
    error: type[KafkaError] = for_code(code)
    return None if error is NoError else error


def config_outcomes(responses: Iterable[Any]) -> list[Outcome]:
    """The resources of DescribeConfigs or AlterConfigs responses."""
    return [
        Outcome(
            name=resource["resource_name"],
            error=_error(resource["error_code"]),
            code=resource["error_code"],
            message=resource["error_message"],
            entries=tuple(
                ConfigEntry(
                    entry["config_names"], entry["config_value"], entry.get("config_source", -1)
                )
                for entry in resource.get("config_entries", ())
            ),
        )
        for response in responses
        for resource in response.to_object()["resources"]
    ]


def creation_outcomes(response: Any) -> dict[str, Outcome]:
    """The topics of a CreateTopics response, by name."""
    return {
        topic["topic"]: Outcome(
            name=topic["topic"],
            error=_error(topic["error_code"]),
            code=topic["error_code"],
            message=topic.get("error_message"),
        )
        for topic in response.to_object()["topic_errors"]
    }
