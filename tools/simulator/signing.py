"""Vonage's secure callbacks, as the simulator sends them (contract §7).

Each request carries ``Authorization: Bearer <JWT>``: HS256 under the callback type's own
signature secret, with the claims Vonage sends (``iat``, ``jti``, ``iss``, ``payload_hash``,
``api_key``, ``application_id``) and no ``exp``. ``payload_hash`` is the hex SHA-256 of the
exact body bytes sent, which is what ingest verifies. Every request is signed afresh (a new
``iat`` and ``jti``), retries included.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import warnings
from dataclasses import dataclass, field

import jwt
from jwt.warnings import InsecureKeyLengthWarning

ISSUER = "Vonage"


@dataclass(frozen=True, slots=True)
class VonageSigner:
    secret: str = field(repr=False)
    """The route's signature secret; never shown."""
    api_key: str
    application_id: str

    def token(self, body: bytes, *, now: float | None = None) -> str:
        claims = {
            "iat": int(time.time() if now is None else now),
            "jti": str(uuid.uuid4()),
            "iss": ISSUER,
            "payload_hash": hashlib.sha256(body).hexdigest(),
            "api_key": self.api_key,
            "application_id": self.application_id,
        }
        with warnings.catch_warnings():
            # Vonage lets a secret be short; whether that is wise is ingest's to say, once,
            # not PyJWT's on every request.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self.secret, algorithm="HS256")

    def authorization(self, body: bytes) -> str:
        """The ``Authorization`` header value for a request with ``body``."""
        return f"Bearer {self.token(body)}"
