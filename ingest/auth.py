"""Callback authentication (off unless configured): a shared token and/or a signed JWT.

* Shared token: the ``INGEST_AUTH_TOKEN`` value in a header (``X-Callback-Token`` by default) or
  a query parameter (``token`` by default; convenient in a callback URL).
* Vonage-style signed callback: ``Authorization: Bearer <JWT>`` signed HS256 with the signature
  secret; ``exp``/``nbf``/``iat`` are checked with a clock-skew leeway, and the ``payload_hash``
  claim (hex SHA-256) is compared with the raw body bytes as received.

When both are configured, both must pass. Comparisons are constant-time; secrets and tokens are
never logged, and failure reasons name the check, not the values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import warnings
from collections.abc import Mapping

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from ingest.settings import IngestSettings

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
        if not hmac.compare_digest(presented.encode(), self._token):
            return "wrong token"
        return None

    def _check_jwt(
        self, headers: Mapping[str, str], body: bytes, secret: str
    ) -> AuthFailure | None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing bearer token"
        try:
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                leeway=self._leeway,
                options={"verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return "expired token"
        except jwt.ImmatureSignatureError:
            return "token not valid yet"
        except jwt.InvalidTokenError:
            return "invalid token"
        return self._check_payload_hash(claims, body)

    def _check_payload_hash(self, claims: Mapping[str, object], body: bytes) -> AuthFailure | None:
        if self._payload_hash == "off":
            return None
        claimed = claims.get("payload_hash")
        if claimed is None:
            return "token has no payload_hash" if self._payload_hash == "required" else None
        if not isinstance(claimed, str):
            return "payload_hash is not a string"
        actual = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(claimed.lower().encode(), actual.encode()):
            return "payload_hash does not match the body"
        return None
