"""Vonage Video secure callbacks as Vonage signs them (contract §7): an HS256 JWT with the claims
``iat``, ``jti``, ``iss``, ``payload_hash``, ``api_key`` and ``application_id`` (no ``exp``), in
the ``Authorization`` header with or without ``Bearer ``."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import jwt

SESSIONS_SECRET = "session-monitoring-signature-secret"
"""``INGEST_VIDEO_SESSIONS_SECRET`` in the tests."""
ARCHIVES_SECRET = "archive-status-signature-secret-of-the-app"
"""``INGEST_VIDEO_ARCHIVES_SECRET`` in the tests."""


def vonage_token(body: bytes, secret: str, **claims: Any) -> str:
    """A token over ``body``; ``claims`` override Vonage's (``None`` leaves one out)."""
    payload: dict[str, Any] = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def vonage_signed(
    body: bytes, secret: str, *, bearer: bool = True, **claims: Any
) -> dict[str, str]:
    """The ``Authorization`` header of a signed callback."""
    token = vonage_token(body, secret, **claims)
    return {"Authorization": f"Bearer {token}" if bearer else token}
