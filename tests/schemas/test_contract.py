"""The committed contract files match the structs, and describe every contract §4 topic."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec

from schemas.contract import CONTRACT_DIR, asyncapi_document, rendered_files, unused_derived_types
from schemas.topics import DEFAULT_PREFIX, PUBLIC_TOPICS, CleanupPolicy

CONTRACT_TOPICS = {
    "callbacks.raw": ("session_id, else room_id", CleanupPolicy.DELETE),
    "callbacks.dlq": ("as on the raw topic", CleanupPolicy.DELETE),
    "session-state": ("session_id", CleanupPolicy.COMPACT),
    "sessions": ("session_id", CleanupPolicy.DELETE),
    "participants": ("session_id", CleanupPolicy.DELETE),
    "recordings": ("recording_id", CleanupPolicy.DELETE),
    "rooms": ("room_id", CleanupPolicy.DELETE),
}


def test_committed_contract_files_are_up_to_date() -> None:
    expected = rendered_files()
    committed = {
        str(path.relative_to(CONTRACT_DIR)): path.read_bytes()
        for path in CONTRACT_DIR.rglob("*.json")
    }
    stale = sorted(name for name in expected if committed.get(name) != expected[name])
    extra = sorted(set(committed) - set(expected))
    hint = "run `python -m schemas` and commit the result"
    assert not stale, f"stale contract files {stale}: {hint}"
    assert not extra, f"contract files no struct produces {extra}: {hint}"


def test_topics_are_the_spec_topics() -> None:
    assert {t.suffix: (t.key, t.cleanup_policy) for t in PUBLIC_TOPICS} == CONTRACT_TOPICS
    assert {t.name for t in PUBLIC_TOPICS} == {
        DEFAULT_PREFIX + suffix for suffix in CONTRACT_TOPICS
    }


def test_every_derived_event_type_is_published_on_a_topic() -> None:
    assert unused_derived_types() == []


def test_asyncapi_describes_every_topic_with_key_payload_and_cleanup_policy() -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(channels) == {DEFAULT_PREFIX + suffix for suffix in CONTRACT_TOPICS}
    messages = document["components"]["messages"]
    for suffix, (key, policy) in CONTRACT_TOPICS.items():
        address = DEFAULT_PREFIX + suffix
        channel = channels[address]
        assert channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == [policy]
        assert channel["messages"], address
        for reference in channel["messages"].values():
            message = messages[reference["$ref"].rsplit("/", 1)[1]]
            assert message["bindings"]["kafka"]["key"]["description"] == key
            schema_file = message["payload"]["schema"]["$ref"]
            assert (CONTRACT_DIR / schema_file).is_file(), schema_file
    # Every operation points at a channel that exists.
    for operation in document["operations"].values():
        assert operation["channel"]["$ref"].removeprefix("#/channels/") in document["channels"]


def test_json_schemas_name_themselves_and_their_dialect() -> None:
    for path in (CONTRACT_DIR / "json").glob("*.schema.json"):
        schema = msgspec.json.decode(path.read_bytes())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert path.name == f"{schema['title']}.schema.json"


def test_schemas_package_imports_nothing_from_the_services() -> None:
    package = Path(__file__).parents[2] / "schemas"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root not in {"ingest", "processor", "aiohttp", "aiokafka"}, (module, name)
