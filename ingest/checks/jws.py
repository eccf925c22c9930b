"""HS256 JSON Web Tokens in compact form, verified as PyJWT 2.15.1 verifies them for ingest.

PyJWT checks each base64url character in a Python loop and re-examines the key (PEM, SSH, DER,
JWK) on every call, which is most of what a signed callback's check costs with it. This module
accepts and refuses exactly the tokens that ``jwt.decode(token, key, algorithms=["HS256"],
leeway=..., options={"verify_aud": False[, "require": ["iat"]]})`` accepts and refuses, without
either cost:

* Three base64url segments, each strictly ``A-Za-z0-9_-`` (checked by C loops), optionally
  followed by the ``=`` padding a standard encoder writes (one or two, only where it completes
  a group of four), and canonical: the unused bits of the last character are zero, so a token
  has one spelling.
* A JSON object header with ``"alg": "HS256"``; a non-string ``kid`` is refused; ``crit``, if
  present, must be a non-empty list naming only ``b64``, which must then be present; ``"b64":
  false`` (RFC 7797's unencoded payload) is refused, as PyJWT refuses it without a detached
  payload.
* HMAC-SHA256 over the first two segments as sent (padding included), compared in constant
  time.
* A JSON object payload; ``registered_claims_failure`` then checks ``iat``, ``nbf`` and
  ``exp`` as PyJWT does (anything ``int()`` takes, so a numeric string or a boolean passes its
  type check; an ``iat`` beyond the leeway in the future is refused), and that ``sub`` and
  ``jti``, if present, are strings. ``iss`` and ``aud`` are not checked: ingest names no issuer
  and turns the audience check off.

JSON is read as PyJWT reads it, with ``json.loads``, unless orjson reads it as an object of
strings, integers, booleans and nulls (as signed callbacks' claims are), which ``json.loads``
reads alike. Anything else is read again by ``json.loads``: orjson refuses NaN, lone surrogates,
a byte order mark, UTF-16; it reads integers beyond 64 bits as floats; it reads nesting deeper
than the recursion limit lets ``json.loads``.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
from typing import Any

import orjson

INVALID = "invalid token"
EXPIRED = "expired token"
NOT_YET_VALID = "token not valid yet"
NO_IAT = "token has no iat"

Claims = dict[str, Any]

_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_STANDARD = bytes(
    _STANDARD[_URLSAFE.index(byte)] if byte in _URLSAFE else ord("!") for byte in range(256)
)
"""base64url to base64, and every other byte (``+``, ``/`` and ``=`` included) to ``!``, which
the strict decoder refuses: the alphabet check and the translation in one pass."""
_PADDING = (b"", b"", b"==", b"=")
"""By the number of characters in the last group of four (one is refused before)."""
_VALUE = bytes(_URLSAFE.index(byte) if byte in _URLSAFE else 0 for byte in range(256))
"""The six bits each base64url character stands for."""
_UNUSED_BITS = (0, 0, 0b1111, 0b11)
"""By the number of characters in the last group: of the last one's six bits, those that
encode no byte (two characters carry one byte, three carry two)."""

_FLAT = frozenset({str, int, bool, type(None)})
"""The value types of an object that orjson and ``json.loads`` read alike."""


_BLOCK = 64
"""SHA-256's block size, in bytes."""
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class HS256Verifier:
    """Tokens signed with one HMAC-SHA256 key, prepared once: the hash states of the padded
    key (RFC 2104, as the standard library's pure-Python ``hmac`` builds them). The one-shot
    ``hmac.digest`` sets OpenSSL's HMAC up again on every call, which costs several times what
    copying the prepared states does (tests compare the two digests)."""

    __slots__ = ("_accepted_header", "_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("an HMAC key must not be empty")
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))
        # The last header segment found acceptable: a sender writes the same header on every
        # token, and whether a header is acceptable depends on its bytes alone.
        self._accepted_header: bytes | None = None

    def claims(self, token: str) -> Claims | None:
        """The payload of a well-formed token signed with this key, else ``None``."""
        if not token.isascii():
            return None
        raw = token.encode("ascii")
        segments = raw.split(b".")
        if len(segments) != 3:
            return None
        header_segment, payload_segment, signature_segment = segments
        if header_segment != self._accepted_header:
            header = _json_object(decode_segment(header_segment))
            if header is None or not _acceptable_header(header):
                return None
            self._accepted_header = header_segment
        payload = decode_segment(payload_segment)
        signature = decode_segment(signature_segment)
        if payload is None or signature is None:
            return None
        signing_input = raw[: len(header_segment) + 1 + len(payload_segment)]
        if not hmac.compare_digest(signature, self.mac(signing_input)):
            return None
        return _json_object(payload)

    def mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under this key."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def decode_segment(segment: bytes) -> bytes | None:
    """The bytes of a base64url ``segment``; ``None`` if it has a character outside the
    alphabet, wrong padding, or is not the canonical encoding of its bytes."""
    data = segment.rstrip(b"=")
    length = len(data)
    padding = len(segment) - length
    if length % 4 == 1 or (padding and padding != -length % 4):
        return None
    try:
        decoded = binascii.a2b_base64(
            data.translate(_TO_STANDARD) + _PADDING[length % 4], strict_mode=True
        )
    except binascii.Error:
        return None
    # Unused bits set in the last character spell the same bytes otherwise. PyJWT refuses
    # them by re-encoding the bytes and comparing; this is that comparison, on the only
    # character where the two can differ.
    if length % 4 and _VALUE[data[-1]] & _UNUSED_BITS[length % 4]:
        return None
    return decoded


def parse_json(document: bytes) -> Any:
    """``json.loads(document)``: PyJWT's parser, with its errors (``ValueError``,
    ``RecursionError``)."""
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        return json.loads(document)
    if type(value) is dict and _FLAT.issuperset(map(type, value.values())):
        return value
    return json.loads(document)


def registered_claims_failure(
    claims: Claims, *, now: float, leeway: float, require_iat: bool
) -> str | None:
    """Why PyJWT would refuse these claims at time ``now``, else ``None``: its checks, in its
    order."""
    if require_iat and claims.get("iat") is None:
        return NO_IAT
    if "iat" in claims:
        issued_at = _as_int(claims["iat"])
        if issued_at is None:
            return INVALID
        if issued_at > now + leeway:
            return NOT_YET_VALID
    if "nbf" in claims:
        not_before = _as_int(claims["nbf"])
        if not_before is None:
            return INVALID
        if not_before > now + leeway:
            return NOT_YET_VALID
    if "exp" in claims:
        expires = _as_int(claims["exp"])
        if expires is None:
            return INVALID
        if expires <= now - leeway:
            return EXPIRED
    if "sub" in claims and not isinstance(claims["sub"], str):
        return INVALID
    if "jti" in claims and not isinstance(claims["jti"], str):
        return INVALID
    return None


def _json_object(document: bytes | None) -> Claims | None:
    if document is None:
        return None
    try:
        value = parse_json(document)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _acceptable_header(header: Claims) -> bool:
    if "kid" in header and not isinstance(header["kid"], str):
        return False
    if "crit" in header:
        crit = header["crit"]
        # PyJWT understands one extension, b64, and requires what crit names to be present.
        if not isinstance(crit, list) or not crit or "b64" not in header:
            return False
        if any(extension != "b64" for extension in crit):
            return False
    if header.get("b64", True) is False:
        return False
    return bool(header.get("alg") == "HS256")


def _as_int(value: Any) -> int | None:
    """PyJWT's reading of a time claim: whatever ``int()`` takes."""
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        return None
