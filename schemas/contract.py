"""The published contract for downstream teams, generated from the structs.

* ``schemas/contract/json/<type>.schema.json``: a JSON Schema (draft 2020-12) per derived event
  type, for ``SessionState`` and for the raw callbacks;
* ``schemas/contract/asyncapi.json``: an AsyncAPI 3 document of every topic (address, key,
  payload schema reference, cleanup policy).

``python -m schemas`` rewrites them; a test fails when the committed files are stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from schemas.callbacks import Callback
from schemas.events import DERIVED_EVENT_TYPES, DerivedEvent, event_type_name
from schemas.state import SessionState
from schemas.topics import PUBLIC_TOPICS, SESSION_STATE, TopicContract
from schemas.video import VideoCallback

CONTRACT_DIR = Path(__file__).parent / "contract"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
_KAFKA_BINDING_VERSION = "0.5.0"
SESSION_STATE_NAME = "session-state"
CALLBACK_NAME = "callback"
VIDEO_CALLBACK_NAME = "video-callback"


def schema_file_name(name: str) -> str:
    return f"json/{name}.schema.json"


def json_schema(value_type: Any, *, title: str, description: str) -> dict[str, Any]:
    generated = _null_last(msgspec.json.schema(value_type))
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_file_name(title),
        "title": title,
        "description": description,
        **generated,
    }


def _null_last(node: Any) -> Any:
    """The schema with ``{"type": "null"}`` last in every ``anyOf``: msgspec releases order
    an optional field's alternatives differently, and the published files must not change
    with the release that wrote them."""
    if isinstance(node, dict):
        walked = {key: _null_last(value) for key, value in node.items()}
        alternatives = walked.get("anyOf")
        if isinstance(alternatives, list):
            null = {"type": "null"}
            walked["anyOf"] = [a for a in alternatives if a != null] + [
                a for a in alternatives if a == null
            ]
        return walked
    if isinstance(node, list):
        return [_null_last(item) for item in node]
    return node


def all_json_schemas() -> dict[str, dict[str, Any]]:
    """Relative file name -> schema, for every published payload type."""
    schemas: dict[str, dict[str, Any]] = {}
    for event_type in DERIVED_EVENT_TYPES:
        name = event_type_name(event_type)
        schemas[schema_file_name(name)] = json_schema(
            event_type, title=name, description=f"The `{name}` derived event."
        )
    schemas[schema_file_name(SESSION_STATE_NAME)] = json_schema(
        SessionState,
        title=SESSION_STATE_NAME,
        description=f"Latest state of one session ({SESSION_STATE.name}).",
    )
    schemas[schema_file_name(CALLBACK_NAME)] = json_schema(
        Callback,
        title=CALLBACK_NAME,
        description="A Vonage Meetings callback as accepted by ingest (any accepted spelling). "
        "Numeric fields may also arrive as numeric strings; unknown fields are ignored.",
    )
    schemas[schema_file_name(VIDEO_CALLBACK_NAME)] = json_schema(
        VideoCallback,
        title=VIDEO_CALLBACK_NAME,
        description="A Vonage Video API callback as accepted by ingest: session monitoring "
        "(POST /video/sessions) or archive status (POST /video/archives). Times are epoch "
        "milliseconds; numeric fields may also arrive as numeric strings; unknown fields are "
        "ignored.",
    )
    return schemas


def _message_id(name: str) -> str:
    head, *rest = name.replace("-", ".").split(".")
    return head + "".join(part.capitalize() for part in rest)


def _channel_id(topic: TopicContract) -> str:
    return _message_id(topic.suffix)


def _message(name: str, topic: TopicContract, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"schemaFormat": _SCHEMA_FORMAT, "schema": {"$ref": schema_file_name(name)}},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": _KAFKA_BINDING_VERSION,
            }
        },
    }


def _topic_messages(topic: TopicContract) -> dict[str, dict[str, Any]]:
    if topic.events:
        return {
            _message_id(event_type_name(t)): _message(
                event_type_name(t), topic, _summary_of(event_type_name(t))
            )
            for t in topic.events
        }
    if topic.payload is SessionState:
        return {"sessionState": _message(SESSION_STATE_NAME, topic, "Latest state of a session.")}
    rejected = " the processor rejected." if "dlq" in topic.name else "."
    channel = _channel_id(topic)
    return {
        channel + "Callback": _message(
            CALLBACK_NAME, topic, "A raw Vonage Meetings callback body" + rejected
        ),
        channel + "VideoCallback": _message(
            VIDEO_CALLBACK_NAME, topic, "A raw Vonage Video API callback body" + rejected
        ),
    }


def _summary_of(name: str) -> str:
    for event_type in DERIVED_EVENT_TYPES:
        if event_type_name(event_type) == name:
            return f"The {name} event ({event_type.__name__})."
    raise KeyError(name)


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in PUBLIC_TOPICS:
        channel = _channel_id(topic)
        topic_messages = _topic_messages(topic)
        messages.update(topic_messages)
        channels[channel] = {
            "address": topic.name,
            "description": topic.description,
            "messages": {
                message_id: {"$ref": f"#/components/messages/{message_id}"}
                for message_id in topic_messages
            },
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "topicConfiguration": {"cleanup.policy": [str(topic.cleanup_policy)]},
                    "bindingVersion": _KAFKA_BINDING_VERSION,
                }
            },
        }
        # Described from the pipeline's side: ingest sends the raw topic, the processor
        # receives it and sends every other topic.
        operations[f"publish{channel[0].upper()}{channel[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{message_id}"}
                for message_id in topic_messages
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Meetings callback pipeline",
            "version": "1.0.0",
            "description": "Kafka topics of the meetings pipeline: raw Vonage Meetings callbacks "
            "(ingest's POST /callbacks routes) and Vonage Video API callbacks (POST "
            "/video/sessions, POST /video/archives; the source-route header says which) in, "
            "per-session state and derived events out, one contract whatever the source. "
            "Derived values are JSON; every derived event has type, event_id, occurred_at, "
            "session_id, room_id, schema_version, source, tenant_id. Read with "
            "isolation.level=read_committed.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(document: dict[str, Any]) -> bytes:
    """Stable, reviewable JSON text: sorted keys, two-space indent, trailing newline."""
    return msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=2) + b"\n"


def rendered_files() -> dict[str, bytes]:
    files = {name: render(schema) for name, schema in all_json_schemas().items()}
    files["asyncapi.json"] = render(asyncapi_document())
    return files


def write_contract(directory: Path = CONTRACT_DIR) -> list[Path]:
    written: list[Path] = []
    for name, content in rendered_files().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            written.append(path)
    return written


def unused_derived_types() -> list[type[DerivedEvent]]:
    """Derived event types no topic publishes (must be empty; checked by tests)."""
    published = {t for topic in PUBLIC_TOPICS for t in topic.events}
    return [t for t in DERIVED_EVENT_TYPES if t not in published]
