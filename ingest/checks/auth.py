"""Callback authentication (off unless configured): a shared token and/or signed callbacks.

* Shared token (Meetings routes): the ``INGEST_AUTH_TOKEN`` value in a header
  (``X-Callback-Token`` by default) or a query parameter (``token`` by default; convenient in a
  callback URL).
* Signed callback: a JWT in the ``Authorization`` header, signed HS256 with a signature secret
  (verified by ``jws``, which accepts and refuses what PyJWT's ``jwt.decode`` does, without its
  per-call cost); ``exp``/``nbf``/``iat`` are checked with a clock-skew leeway, and the
  ``payload_hash`` claim (hex SHA-256) is compared with the raw body bytes as received. With a
  maximum age, a token must carry ``iat`` and be no older than that: it bounds how long a
  captured callback can be replayed, but Vonage does not document re-signing a retried
  callback, so it is off by default (a late retry would be refused). One ``SignatureVerifier``
  per secret: the Meetings routes share ``INGEST_JWT_SECRET`` (``Bearer <JWT>``,
  ``INGEST_JWT_PAYLOAD_HASH``), and each Vonage Video route has its own secret, as Vonage signs
  each callback type with its own (the JWT with or without ``Bearer ``, ``payload_hash``
  required: Vonage always sends it).

Each route has one ``Authenticator``; when it has both checks, both must pass. Comparisons are
constant-time; secrets and tokens are never logged, and failure reasons name the check, not the
values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError
from jwt.warnings import InsecureKeyLengthWarning

from ingest.checks.jws import INVALID, HS256Verifier, registered_claims_failure
from ingest.settings import IngestSettings
from servicekit.env import Secret

logger = logging.getLogger(__name__)

RECOMMENDED_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key should be at least as long as the hash."""

AuthFailure = str
"""A short reason, safe to log and to return in the 401 body."""


class SharedToken:
    """The shared token, in a header or a query parameter."""

    def __init__(self, token: Secret, *, header: str, query: str) -> None:
        self._token = token.value.encode()
        self._header = header
        self._query = query

    def check(self, headers: Mapping[str, str], query: Mapping[str, str]) -> AuthFailure | None:
        presented = headers.get(self._header) or query.get(self._query)
        if presented is None:
            return "missing token"
        if not hmac.compare_digest(_as_sent(presented), self._token):
            return "wrong token"
        return None


class SignatureVerifier:
    """Signed callbacks under one signature secret (named by ``setting`` in warnings).

    ``payload_hash``: ``required``, ``if_present`` or ``off`` (``INGEST_JWT_PAYLOAD_HASH``).
    ``bearer_optional``: the token may also be the whole header value, without ``Bearer ``."""

    def __init__(
        self,
        secret: Secret,
        *,
        setting: str,
        leeway_s: float,
        max_age_s: float,
        payload_hash: str,
        bearer_optional: bool,
    ) -> None:
        key = secret.value.encode()
        try:
            # PyJWT's own test of an HMAC secret (``jwt.decode`` runs it on every call), run
            # once here: it refuses an asymmetric key, a certificate or a JWK.
            HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
        except InvalidKeyError as refused:
            raise ValueError(f"{setting}: {refused}") from None
        self._verifier = HS256Verifier(key)
        self._leeway = leeway_s
        self._max_age_s = max_age_s
        self._payload_hash = payload_hash
        self._bearer_optional = bearer_optional
        self._missing = "missing signed token" if bearer_optional else "missing bearer token"
        if len(key) < RECOMMENDED_SECRET_BYTES:
            logger.warning(
                "%s is shorter than %d bytes; use a longer signature secret",
                setting,
                RECOMMENDED_SECRET_BYTES,
            )
            # Said once, above: PyJWT, which signs with such a secret elsewhere in the
            # process (the simulator, a test client), would otherwise warn on every token.
            warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)

    def check(self, headers: Mapping[str, str], body: bytes) -> AuthFailure | None:
        """``None`` when the request carries a valid token over ``body``, else why not."""
        token = self._presented(headers.get("Authorization", ""))
        if token is None:
            return self._missing
        claims = self._verifier.claims(token)
        if claims is None:
            return INVALID
        now = time.time()
        limited_age = self._max_age_s > 0
        failure = registered_claims_failure(
            claims, now=now, leeway=self._leeway, require_iat=limited_age
        )
        if failure:
            return failure
        if limited_age:
            failure = self._check_age(claims["iat"], now)
            if failure:
                return failure
        return self._check_payload_hash(claims, body)

    def _presented(self, authorization: str) -> str | None:
        """The token of an ``Authorization`` value: ``Bearer <JWT>``, or (``bearer_optional``)
        the bare JWT."""
        value = authorization.strip()
        scheme, space, rest = value.partition(" ")
        if space:
            token = rest.strip() if scheme.lower() == "bearer" else ""
        else:
            token = value if self._bearer_optional else ""
        return token or None

    def _check_age(self, issued_at: object, now: float) -> AuthFailure | None:
        """The leeway covers clock skew. The registered-claim check accepts any ``iat`` that
        ``int()`` takes (even a numeric string), as PyJWT does; only a JSON number is a time
        here."""
        if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
            return INVALID
        if now - issued_at > self._max_age_s + self._leeway:
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


@dataclass(frozen=True, slots=True)
class Authenticator:
    """A route's authentication: each configured check must pass; none configured, every
    request passes."""

    token: SharedToken | None = None
    signature: SignatureVerifier | None = None

    @property
    def configured(self) -> bool:
        return self.token is not None or self.signature is not None

    def check(
        self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> AuthFailure | None:
        """``None`` when the request is authentic, else why not."""
        if self.token is not None:
            failure = self.token.check(headers, query)
            if failure:
                return failure
        if self.signature is not None:
            return self.signature.check(headers, body)
        return None


def meetings_authenticator(settings: IngestSettings) -> Authenticator:
    """The Meetings routes': ``INGEST_AUTH_TOKEN`` and/or ``INGEST_JWT_SECRET``."""
    token = None
    if settings.auth_token is not None:
        token = SharedToken(
            settings.auth_token,
            header=settings.auth_token_header,
            query=settings.auth_token_query,
        )
    signature = None
    if settings.jwt_secret is not None:
        signature = SignatureVerifier(
            settings.jwt_secret,
            setting="INGEST_JWT_SECRET",
            leeway_s=settings.jwt_leeway_s,
            max_age_s=settings.jwt_max_age_s,
            payload_hash=settings.jwt_payload_hash,
            bearer_optional=False,
        )
    return Authenticator(token, signature)


def video_authenticator(
    settings: IngestSettings, secret: Secret | None, *, setting: str
) -> Authenticator:
    """A Vonage Video route's: its own signature secret (``setting``), if any. Vonage Video
    sends no shared token, so ``INGEST_AUTH_TOKEN`` does not apply."""
    if secret is None:
        return Authenticator()
    return Authenticator(
        signature=SignatureVerifier(
            secret,
            setting=setting,
            leeway_s=settings.jwt_leeway_s,
            max_age_s=settings.jwt_max_age_s,
            payload_hash="required",
            bearer_optional=True,
        )
    )


def _as_sent(value: str) -> bytes:
    """The bytes of a header or query value as sent: aiohttp decodes non-UTF-8 bytes with
    surrogate escapes, which a plain ``encode()`` refuses. A value that cannot be mapped back
    becomes ``b""``, which never equals a configured token (at least 16 characters)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b""
