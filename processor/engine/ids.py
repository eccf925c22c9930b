"""Deterministic event ids (contract §5.7).

A derived event's id is a digest of the facts that identify it, never of when or how often it was
computed, so whatever the processor re-sends after a crash or a rebalance carries the same id and
consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib

import msgspec


def event_id(event_type: str, *parts: str | int) -> str:
    """32 hex characters: a BLAKE2b-128 digest of the event type and its identifying parts.

    The parts are hashed as a JSON array rather than a joined string, so ids containing the
    separator cannot make two different tuples collide.
    """
    return identity_digest([event_type, *parts])


def identity_digest(identity: list[str | int]) -> str:
    """``event_id`` of ``[event_type, *parts]`` given as that list (for callers that build it
    anyway: unpacking into ``event_id`` costs a second copy)."""
    return hashlib.blake2b(msgspec.json.encode(identity), digest_size=16).hexdigest()
