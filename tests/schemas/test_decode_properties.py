"""Properties of decoding over generated inputs."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from schemas import BaseCallback, DecodeFailure, decode_callback, encode
from schemas.callbacks import EVENT_SPELLINGS
from tests.schemas.callback_strategies import callbacks, json_values


@given(callbacks)
def test_any_valid_callback_encodes_and_decodes_back_to_itself(callback: BaseCallback) -> None:
    assert decode_callback(encode(callback)) == callback


@given(callbacks)
def test_a_double_encoded_callback_decodes_to_the_same_callback(callback: BaseCallback) -> None:
    double_encoded = msgspec.json.encode(encode(callback).decode())
    assert decode_callback(double_encoded) == callback


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    assert isinstance(decode_callback(body), BaseCallback | DecodeFailure)


@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    assert isinstance(decode_callback(msgspec.json.encode(value)), BaseCallback | DecodeFailure)


@given(
    st.sampled_from(sorted(EVENT_SPELLINGS)),
    st.dictionaries(
        st.sampled_from(
            ["session_id", "room_id", "participant_id", "recording_id", "started_at", "duration"]
        ),
        json_values,
    ),
)
def test_known_events_with_arbitrary_fields_never_raise(event: str, fields: dict[str, Any]) -> None:
    outcome = decode_callback(msgspec.json.encode({"event": event, **fields}))
    if isinstance(outcome, DecodeFailure):
        assert outcome.event == event
        assert outcome.reason == "invalid_callback"
    else:
        assert outcome.canonical_event == EVENT_SPELLINGS[event]
