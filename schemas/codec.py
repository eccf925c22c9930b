"""Reusable encoders and decoders for everything the pipeline publishes (built once, reused)."""

from __future__ import annotations

import msgspec

from schemas.events import AnyDerivedEvent
from schemas.state import SessionState

_ENCODER = msgspec.json.Encoder()
_EVENT_DECODER: msgspec.json.Decoder[AnyDerivedEvent] = msgspec.json.Decoder(AnyDerivedEvent)
_STATE_DECODER = msgspec.json.Decoder(SessionState)


def encode(value: msgspec.Struct) -> bytes:
    """JSON bytes of a derived event, a ``SessionState`` or a callback."""
    return _ENCODER.encode(value)


def decode_event(data: bytes | bytearray | memoryview) -> AnyDerivedEvent:
    """Decode any derived event by its ``type``; raises ``msgspec.ValidationError`` if invalid."""
    return _EVENT_DECODER.decode(data)


def decode_state(data: bytes | bytearray | memoryview) -> SessionState:
    return _STATE_DECODER.decode(data)
