"""Hypothesis strategies that generate valid callbacks of every type and spelling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import strategies as st

from schemas.callbacks import CALLBACK_TYPES, BaseCallback

identifiers = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~",
    min_size=1,
    max_size=80,
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
texts = st.text(max_size=40)

FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "room_id": identifiers,
    "session_id": identifiers,
    "participant_id": identifiers,
    "recording_id": identifiers,
    "room_type": st.sampled_from(["instant", "long_term"]) | texts,
    "expires_at": instants,
    "created_at": st.none() | instants,
    "started_at": instants,
    "ended_at": instants,
    "duration": st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
    "url": st.text(min_size=1, max_size=80),
    "name": st.none() | texts,
    "type": st.none() | st.sampled_from(["Guest", "Host"]),
    "is_host": st.booleans(),
}


def callbacks_of(callback_type: type[BaseCallback]) -> st.SearchStrategy[BaseCallback]:
    fields = msgspec.structs.fields(callback_type)
    optional_room = any(f.name == "room_id" and f.required is False for f in fields)
    strategies = {field.name: FIELD_STRATEGIES[field.name] for field in fields}
    if optional_room:
        strategies["room_id"] = st.none() | identifiers
    return st.builds(callback_type, **strategies)


callbacks: st.SearchStrategy[BaseCallback] = st.one_of(
    [callbacks_of(callback_type) for callback_type in CALLBACK_TYPES]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
