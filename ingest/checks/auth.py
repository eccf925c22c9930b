"""Callback authentication (off unless configured): a shared token and/or a signed JWT.

* Shared token: the ``INGEST_AUTH_TOKEN`` value in a header (``X-Callback-Token`` by default) or
  a query parameter (``token`` by default; convenient in a callback URL).
* Vonage-style signed callback: ``Authorization: Bearer <JWT>`` signed HS256 with the signature
  secret; ``exp``/``nbf``/``iat`` are checked with a clock-skew leeway, and the ``payload_hash``
  claim (hex SHA-256) is compared with the raw body bytes as received. With a maximum age, a
  token must carry ``iat`` and be no older than that: it bounds how long a captured callback can
  be replayed, but Vonage does not document re-signing a retried callback, so it is off by
  default (a late retry would be refused).

When both are configured, both must pass. Comparisons are constant-time; secrets and tokens are
never logged, and failure reasons name the check, not the values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from ingest.settings import IngestSettings

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10+; annotations only

logger = logging.getLogger(__name__)

RECOMMENDED_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key should be at least as long as the hash."""

AuthFailure = str
"""A short reason, safe to log and to return in the 401 body."""


class Authenticator:
    def __init__(self, settings: IngestSettings) -> None:
        self._token = settings.auth_token.value.encode() if settings.auth_token else None
        self._token_header = settings.auth_token_header
        self._token_query = settings.auth_token_query
        self._jwt_secret = settings.jwt_secret.value if settings.jwt_secret else None
        self._payload_hash = settings.jwt_payload_hash
        self._leeway = settings.jwt_leeway_s
        self._max_age_s = settings.jwt_max_age_s
        self._decode_options: Options = {"verify_aud": False}
        if self._max_age_s > 0:
            self._decode_options["require"] = ["iat"]
        if (
            self._jwt_secret is not None
            and len(self._jwt_secret.encode()) < RECOMMENDED_SECRET_BYTES
        ):
            # Said once here rather than by PyJWT on every request.
            logger.warning(
                "INGEST_JWT_SECRET is shorter than %d bytes; use a longer signature secret",
                RECOMMENDED_SECRET_BYTES,
            )
            warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)

    def check(
        self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> AuthFailure | None:
        """``None`` when the request is authentic, else why not."""
        if self._token is not None:
            failure = self._check_token(headers, query)
            if failure:
                return failure
        if self._jwt_secret is not None:
            return self._check_jwt(headers, body, self._jwt_secret)
        return None

    def _check_token(
        self, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> AuthFailure | None:
        assert self._token is not None
        presented = headers.get(self._token_header) or query.get(self._token_query)
        if presented is None:
            return "missing token"
        if not hmac.compare_digest(_as_sent(presented), self._token):
            return "wrong token"
        return None

    def _check_jwt(
        self, headers: Mapping[str, str], body: bytes, secret: str
    ) -> AuthFailure | None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing bearer token"
        if not token.isascii():  # a JWT is base64url and dots; PyJWT would fail to encode it
            return "invalid token"
        try:
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                leeway=self._leeway,
                options=self._decode_options,
            )
        except jwt.MissingRequiredClaimError:
            return "token has no iat"
        except jwt.ExpiredSignatureError:
            return "expired token"
        except jwt.ImmatureSignatureError:
            return "token not valid yet"
        except jwt.InvalidTokenError:
            return "invalid token"
        if self._max_age_s > 0:
            failure = self._check_age(claims["iat"])
            if failure:
                return failure
        return self._check_payload_hash(claims, body)

    def _check_age(self, issued_at: object) -> AuthFailure | None:
        """The leeway covers clock skew. PyJWT accepts any ``iat`` that ``int()`` takes (even a
        numeric string); only a JSON number is a time here."""
        if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
            return "invalid token"
        if time.time() - issued_at > self._max_age_s + self._leeway:
            return "token too old"
        return None

    def _check_payload_hash(self, claims: Mapping[str, object], body: bytes) -> AuthFailure | None:
        if self._payload_hash == "off":
            return None
        claimed = claims.get("payload_hash")
        if claimed is None:
            return "token has no payload_hash" if self._payload_hash == "required" else None
        if not isinstance(claimed, str):
            return "payload_hash is not a string"
        if not claimed.isascii():  # hex digits only; also keeps encode() below from failing
            return "payload_hash does not match the body"
        actual = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(claimed.lower().encode(), actual.encode()):
            return "payload_hash does not match the body"
        return None


def _as_sent(value: str) -> bytes:
    """The bytes of a header or query value as sent: aiohttp decodes non-UTF-8 bytes with
    surrogate escapes, which a plain ``encode()`` refuses. A value that cannot be mapped back
    becomes ``b""``, which never equals a configured token (at least 16 characters)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b""
