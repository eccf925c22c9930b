"""The HS256 verifier against PyJWT 2.15, its reference: the same tokens accepted, the same
claims returned, the same reason for each refusal. PyJWT's clock is frozen at the time given
to ours, so verdicts at the edge of the leeway are compared too. Broker-free."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock

import jwt
import jwt.api_jwt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jwt.algorithms import HMACAlgorithm
from jwt.api_jws import PyJWS
from jwt.exceptions import InvalidKeyError
from jwt.types import Options
from jwt.warnings import InsecureKeyLengthWarning

from ingest.checks import auth
from ingest.checks.auth import SignatureVerifier
from ingest.checks.jws import (
    EXPIRED,
    INVALID,
    NO_IAT,
    NOT_YET_VALID,
    HS256Verifier,
    decode_segment,
    parse_json,
    registered_claims_failure,
)
from servicekit.env import Secret
from tests.ingest.vonage_signing import SESSIONS_SECRET, vonage_token
from tools.simulator.signing import VonageSigner

KEY = b"a-signature-secret-of-thirty-two-bytes-or-more"
NOW = 1_700_000_000.25
Verdict = tuple[str | None, str | None]
"""The refusal reason, or ``None`` and the claims' ``repr`` (which tells ``1``, ``1.0`` and
``True`` apart, and keeps their order)."""


def pyjwt_clock(at: float) -> float:
    """The time PyJWT sees when its clock reads ``at``: microseconds, as ``datetime`` keeps."""
    return datetime.fromtimestamp(at, UTC).timestamp()


@contextmanager
def frozen_pyjwt(at: float) -> Iterator[None]:
    clock = SimpleNamespace(now=lambda tz=None: datetime.fromtimestamp(at, tz))
    with mock.patch.object(jwt.api_jwt, "datetime", clock), warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def pyjwt_decode(
    token: str, key: bytes, *, now: float, leeway: float, require_iat: bool
) -> tuple[str | None, dict[str, Any]]:
    """What ingest made of ``jwt.decode``: a refusal reason, or the claims."""
    options: Options = {"verify_aud": False}
    if require_iat:
        options["require"] = ["iat"]
    with frozen_pyjwt(now):
        try:
            claims = jwt.decode(token, key, algorithms=["HS256"], leeway=leeway, options=options)
        except jwt.MissingRequiredClaimError:
            return NO_IAT, {}
        except jwt.ExpiredSignatureError:
            return EXPIRED, {}
        except jwt.ImmatureSignatureError:
            return NOT_YET_VALID, {}
        except jwt.InvalidTokenError:
            return INVALID, {}
    return None, claims


def pyjwt_verdict(
    token: str, key: bytes, *, now: float = NOW, leeway: float = 0, require_iat: bool = False
) -> Verdict:
    failure, claims = pyjwt_decode(token, key, now=now, leeway=leeway, require_iat=require_iat)
    return (failure, None) if failure else (None, repr(claims))


def our_verdict(
    token: str,
    key: bytes | HS256Verifier,
    *,
    now: float = NOW,
    leeway: float = 0,
    require_iat: bool = False,
) -> Verdict:
    verifier = key if isinstance(key, HS256Verifier) else HS256Verifier(key)
    claims = verifier.claims(token)
    if claims is None:
        return INVALID, None
    failure = registered_claims_failure(
        claims, now=pyjwt_clock(now), leeway=leeway, require_iat=require_iat
    )
    return (failure, None) if failure else (None, repr(claims))


def agreed_verdict(token: str, key: bytes = KEY, **check: Any) -> Verdict:
    ours = our_verdict(token, key, **check)
    assert ours == pyjwt_verdict(token, key, **check), token[:200]
    return ours


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: str, payload: str, key: bytes = KEY) -> str:
    """A token of these segments (as written, padding included) under ``key``."""
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{b64url(hmac.digest(key, signing_input.encode(), 'sha256'))}"


def make_token(claims: dict[str, Any], key: bytes = KEY, **headers: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm="HS256", headers=headers or None)


GOOD = make_token({"iat": int(NOW), "exp": int(NOW) + 300, "payload_hash": "00" * 32})
SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc80\ud83d"])
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats(allow_nan=False)  # json.dumps writes infinities as Infinity
    | st.text(max_size=8)
    | SURROGATES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


# --- The claims PyJWT's tokens carry -----------------------------------------------------


def time_values(now: float, leeway: float) -> st.SearchStrategy[Any]:
    """``iat``/``nbf``/``exp`` of every type ``int()`` may or may not take, near ``now`` and
    at the edges of the leeway."""
    near = st.floats(-2 * leeway - 3, 2 * leeway + 3).map(lambda offset: now + offset)
    edges = st.sampled_from([now, now + leeway, now - leeway]).flatmap(
        lambda edge: st.sampled_from([edge, int(edge), int(edge) + 1, int(edge) - 1])
    )
    numbers = near | near.map(int) | edges
    return st.one_of(
        numbers,
        numbers.map(lambda value: str(int(value))),  # int() takes it: passes, as in PyJWT
        numbers.map(lambda value: f" {int(value)}\n"),
        numbers.map(str),  # "1700000000.5": int() refuses it
        st.booleans(),
        st.none(),
        st.sampled_from([[], {}, "soon", "", "1_700_000_000", "\u0661\u0662"]),
        st.sampled_from([2**70, -(2**70), 10**19, float("inf"), float("-inf"), float("nan")]),
    )


@st.composite
def claim_sets(draw: st.DrawFn) -> tuple[float, float, bool, dict[str, Any]]:
    now = draw(st.floats(1.5e9, 2.0e9) | st.integers(1_500_000_000, 2_000_000_000).map(float))
    leeway = draw(st.sampled_from([0, 1, 30, 0.5, 90.25]))
    claims: dict[str, Any] = draw(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3))
    claims.pop("iss", None)  # drawn as a key it may be no string, which PyJWT refuses to sign
    for name in ("iat", "nbf", "exp"):
        if draw(st.booleans()):
            claims[name] = draw(time_values(now, leeway))
    for name in ("sub", "jti", "aud"):
        if draw(st.integers(0, 3)) == 0:
            claims[name] = draw(JSON_VALUES)
    if draw(st.booleans()):
        claims["iss"] = draw(st.text(max_size=6))  # PyJWT signs only a string
    if draw(st.booleans()):
        claims["payload_hash"] = hashlib.sha256(draw(st.binary(max_size=8))).hexdigest()
    return now, leeway, draw(st.booleans()), claims


SECRETS = st.binary(min_size=32, max_size=100) | st.text(min_size=32, max_size=60).map(
    lambda text: text.encode()
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(secret=SECRETS, claim_set=claim_sets(), kid=st.none() | st.text(max_size=6))
def test_pyjwt_tokens_get_pyjwts_verdict_and_claims(
    secret: bytes, claim_set: tuple[float, float, bool, dict[str, Any]], kid: str | None
) -> None:
    now, leeway, require_iat, claims = claim_set
    assume(pyjwt_takes_key(secret))  # SignatureVerifier refuses the others at startup
    token = make_token(claims, secret, **({} if kid is None else {"kid": kid}))
    verdict = agreed_verdict(token, secret, now=now, leeway=leeway, require_iat=require_iat)
    if verdict[0] is None:  # the claims as signed, whichever parser read them
        assert verdict[1] == repr(json.loads(json.dumps(claims)))


def pyjwt_takes_key(secret: bytes) -> bool:
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret)
    except InvalidKeyError:
        return False
    return True


@pytest.mark.parametrize(
    ("claims", "check", "reason"),
    [
        ({"exp": int(NOW) + 1}, {}, None),
        ({"exp": int(NOW)}, {"now": int(NOW)}, EXPIRED),  # exp == now
        ({"exp": int(NOW) - 5}, {"now": int(NOW), "leeway": 5}, EXPIRED),
        ({"nbf": int(NOW)}, {"now": int(NOW)}, None),  # nbf == now
        ({"iat": int(NOW) + 5}, {"now": int(NOW), "leeway": 5}, None),
        ({"exp": int(NOW)}, {}, EXPIRED),  # exp <= now: expired at that very second
        ({"exp": int(NOW) - 29}, {"leeway": 30}, None),
        ({"exp": int(NOW) - 30}, {"leeway": 30}, EXPIRED),
        ({"nbf": int(NOW)}, {}, None),
        ({"nbf": int(NOW) + 1}, {}, NOT_YET_VALID),
        ({"nbf": int(NOW) + 30}, {"leeway": 30}, None),
        ({"iat": int(NOW) + 1}, {}, NOT_YET_VALID),  # PyJWT refuses an iat in the future
        ({"iat": int(NOW) + 30}, {"leeway": 30}, None),
        ({"iat": str(int(NOW))}, {}, None),  # int() takes it
        ({"iat": f"{NOW}"}, {}, INVALID),  # int() does not
        ({"exp": True}, {}, EXPIRED),  # int(True) is 1
        ({"exp": None}, {}, INVALID),
        ({"exp": float("inf")}, {}, INVALID),  # OverflowError
        ({"exp": 2**70}, {}, None),
        ({"iat": None}, {"require_iat": True}, NO_IAT),
        ({}, {"require_iat": True}, NO_IAT),
        ({"iat": "x", "exp": 0}, {}, INVALID),  # iat first, as PyJWT orders them
        ({"sub": 1}, {}, INVALID),  # PyJWT's default verify_sub
        ({"jti": None}, {}, INVALID),  # and verify_jti
        ({"sub": "s", "jti": "j", "iss": 7, "aud": 7}, {}, None),  # no issuer, no audience
        ({"exp": 0, "sub": 1}, {}, EXPIRED),
    ],
)
def test_registered_claims_as_pyjwt_reads_them(
    claims: dict[str, Any], check: dict[str, Any], reason: str | None
) -> None:
    token = signed(b64url(b'{"alg":"HS256"}'), b64url(json.dumps(claims).encode()))
    assert agreed_verdict(token, **check)[0] == reason


# --- Headers -------------------------------------------------------------------------------


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["HS256", "HS256", "none", "HS512", "RS256", "hs256", "", None]),
        "typ": st.sampled_from(["JWT", 1]),
        "kid": st.sampled_from(["k", "", 1, None, ["k"]]),
        "crit": st.sampled_from([["b64"], ["b64", "b64"], [], ["exp"], ["b64", 1], "b64", None]),
        "b64": st.sampled_from([True, False, 0, None, "false"]),
    },
)


@settings(max_examples=300)
@given(header=HEADERS, extra=st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=2))
def test_any_header_gets_pyjwts_verdict(header: dict[str, Any], extra: dict[str, Any]) -> None:
    merged = {**extra, **header}
    token = signed(b64url(json.dumps(merged).encode()), b64url(b'{"iat": 1}'))
    crit = merged.get("crit", ["b64"])
    acceptable = (
        merged.get("alg") == "HS256"
        and isinstance(merged.get("kid", ""), str)
        and merged.get("b64") is not False
        and isinstance(crit, list)
        and bool(crit)
        and all(extension == "b64" for extension in crit)
        and ("crit" not in merged or "b64" in merged)
    )
    assert (agreed_verdict(token)[0] is None) == acceptable, merged


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (b'{"alg":"HS256"}', True),
        (b'{"alg":"HS256","crit":["b64"],"b64":true}', True),  # b64 understood; true is usual
        (b'{"alg":"HS256","crit":["b64"],"b64":false}', False),  # RFC 7797: no detached payload
        (b'{"alg":"HS256","b64":false}', False),
        (b'{"alg":"HS256","crit":["b64"]}', False),  # names an extension it lacks
        (b'{"alg":"HS256","crit":["exp"],"exp":1}', False),  # not understood
        (b'{"alg":"none","alg":"HS256"}', True),  # duplicates: the last one, as json.loads
        (b'{"alg":"HS256","alg":"none"}', False),
        (b'{"alg":"HS\\u0032\\u0035\\u0036"}', True),
        (b' {\n"alg" : "HS256"\t} ', True),
        (b'{"alg":"HS256","x":NaN}', True),  # json.loads takes NaN; orjson does not
        (b'{"alg":"HS256","x":"\\ud800"}', True),  # and a lone surrogate
        (b"\xef\xbb\xbf" + b'{"alg":"HS256"}', True),  # and a UTF-8 byte order mark
        ('{"alg":"HS256"}'.encode("utf-16-le"), True),  # and UTF-16
        (b'{"alg":"HS256","x":' + b"[" * 300 + b"]" * 300 + b"}", True),
        (b'{"alg":"HS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}", False),  # RecursionError
        (b'{"alg":"HS256"', False),
        (b'["HS256"]', False),
        (b"null", False),
        (b"", False),
        (b'{"alg":"HS256"}\xff', False),
    ],
)
def test_header_edge_cases(header: bytes, accepted: bool) -> None:
    token = signed(b64url(header), b64url(b'{"iat": 1}'))
    assert (agreed_verdict(token)[0] is None) is accepted


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"exp":0,"exp":9999999999}', None),  # duplicates: the last one, as json.loads
        (b'{"exp":9999999999,"exp":0}', EXPIRED),
        (b'{"exp":99999999999999999999999}', None),  # an int beyond 64 bits, not a float
        (b'{"exp":1e400}', INVALID),  # infinity: OverflowError
        (b'{"exp":NaN}', INVALID),
        (b'{"x":NaN,"y":-Infinity}', None),
        (b'{"x":"\\udc80"}', None),
        (b"\xef\xbb\xbf{}", None),
        ('{"x":"\u00e9"}'.encode("utf-16"), None),
        (b'{"x":"\xff"}', INVALID),  # not UTF-8
        (b'{"x":"\xed\xa0\x80"}', None),  # an encoded surrogate: json.loads lets it pass
        (b"[]", INVALID),
        (b"null", INVALID),
        (b'"{}"', INVALID),
        (b"1", INVALID),
        (b"", INVALID),
        (b"{}", None),
    ],
)
def test_payload_edge_cases(payload: bytes, reason: str | None) -> None:
    token = signed(b64url(b'{"alg":"HS256"}'), b64url(payload))
    assert agreed_verdict(token)[0] == reason


# --- Tampered tokens -------------------------------------------------------------------------


def segments_of(token: str) -> list[str]:
    return token.split(".")


@settings(max_examples=300)
@given(data=st.data())
def test_a_flipped_bit_anywhere_is_refused(data: st.DataObject) -> None:
    verifier = HS256Verifier(KEY)
    assert our_verdict(GOOD, verifier)[0] is None  # and remembers GOOD's header
    segments = segments_of(GOOD)
    which = data.draw(st.integers(0, 2))
    position = data.draw(st.integers(0, len(segments[which]) - 1))
    bit = data.draw(st.integers(0, 7))  # bit 7: a non-ASCII character
    segment = segments[which]
    segments[which] = (
        segment[:position] + chr(ord(segment[position]) ^ (1 << bit)) + (segment[position + 1 :])
    )
    tampered = ".".join(segments)
    assert our_verdict(tampered, verifier) == (INVALID, None)
    assert pyjwt_verdict(tampered, KEY) == (INVALID, None)


ALGORITHMS = ["none", "HS512", "HS384", "RS256", "ES256", "PS256", "EdDSA", "hs256", None]


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("signature", ["original", "hs256", "hs512", "empty"])
def test_another_algorithm_is_refused(alg: str | None, signature: str) -> None:
    verifier = HS256Verifier(KEY)
    assert our_verdict(GOOD, verifier)[0] is None
    _, payload, original = segments_of(GOOD)
    header = b64url(json.dumps({"typ": "JWT"} | ({} if alg is None else {"alg": alg})).encode())
    signing_input = f"{header}.{payload}".encode()
    signatures = {
        "original": original,
        "hs256": b64url(hmac.digest(KEY, signing_input, "sha256")),
        "hs512": b64url(hmac.digest(KEY, signing_input, "sha512")),
        "empty": "",
    }
    forged = f"{header}.{payload}.{signatures[signature]}"
    assert our_verdict(forged, verifier) == (INVALID, None)
    assert our_verdict(forged, verifier) == (INVALID, None)  # a refused header stays refused
    assert pyjwt_verdict(forged, KEY) == (INVALID, None)


@pytest.mark.parametrize(
    "reshape",
    [
        lambda t: t + ".",
        lambda t: "." + t,
        lambda t: t + "." + segments_of(t)[2],
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.replace(".", ".."),
        lambda t: t.replace(".", "", 1),
        lambda t: ".".join([*segments_of(t), "e30", "e30"]),  # five segments, as a JWE
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t.replace(".", ". ", 1),
        lambda t: t.replace("-", "+").replace("_", "/") + "+/",  # the standard alphabet
        lambda t: t + "!",
        lambda t: "",
        lambda t: "..",
    ],
)
def test_other_shapes_are_refused(reshape: Callable[[str], str]) -> None:
    reshaped = reshape(GOOD)
    assert reshaped != GOOD
    assert our_verdict(reshaped, KEY) == (INVALID, None)
    assert pyjwt_verdict(reshaped, KEY) == (INVALID, None)


@pytest.mark.parametrize("filler", ["", "x", "xy"])
def test_padding_is_tolerated_exactly_where_pyjwt_tolerates_it(filler: str) -> None:
    header = b64url(b'{"alg":"HS256","kid":"k"}')  # 34 characters: two short of a group
    payload = b64url(json.dumps({"iat": int(NOW), "f": filler}).encode())
    accepted = set()
    for header_padding in ("", "=", "==", "==="):
        for payload_padding in ("", "=", "==", "==="):
            token = signed(header + header_padding, payload + payload_padding)
            head, body, signature = segments_of(token)
            for signature_padding in ("", "=", "==", "==="):  # 43 characters: one short
                padded = f"{head}.{body}.{signature}{signature_padding}"
                if agreed_verdict(padded)[0] is None:
                    accepted.add((header_padding, payload_padding, signature_padding))
    payload_padding = "=" * (-len(payload) % 4)
    assert accepted == {
        (h, p, s) for h in ("", "==") for p in {"", payload_padding} for s in ("", "=")
    }


def unused_bits_set(segment: str) -> str:
    """The same bytes spelt otherwise: the last character with an unused bit set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


def lenient_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_non_canonical_encoding_is_refused(which: int) -> None:
    header = b64url(b'{"alg":"HS256","kid":"k"}')
    payload = b64url(b'{"iat":1700000000,"f":"x"}')
    assert (len(header) % 4, len(payload) % 4) == (2, 3)  # both with unused bits
    segments = segments_of(signed(header, payload))
    assert agreed_verdict(".".join(segments))[0] is None
    respelt = unused_bits_set(segments[which])
    assert lenient_decode(respelt) == lenient_decode(segments[which])
    segments[which] = respelt
    token = ".".join(segments) if which == 2 else signed(segments[0], segments[1])
    assert our_verdict(token, KEY) == (INVALID, None)
    assert pyjwt_verdict(token, KEY) == (INVALID, None)


@pytest.mark.parametrize(
    "text", ["é", "\u2028", "\uff21", "\u0661", "\x00", "\udcff", "\U0001f600"]
)
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    verifier = HS256Verifier(KEY)
    for at in (0, 10, GOOD.index(".") + 1, len(GOOD)):
        token = GOOD[:at] + text + GOOD[at:]
        assert verifier.claims(token) is None
        if not any("\ud800" <= char <= "\udfff" for char in text):
            assert pyjwt_verdict(token, KEY) == (INVALID, None)


def test_huge_segments() -> None:
    header, payload, signature = segments_of(GOOD)
    junk = "A" * 1_000_000
    for token in (f"{header}{junk}.{payload}.{signature}", f"{GOOD}{junk}", f"{junk}.{junk}."):
        assert our_verdict(token, KEY) == (INVALID, None)
        assert pyjwt_verdict(token, KEY) == (INVALID, None)
    big = make_token({"iat": int(NOW), "x": "y" * 1_000_000, "n": [list(range(50))] * 100})
    assert agreed_verdict(big)[0] is None  # no size limit, as in PyJWT: aiohttp bounds headers


@settings(max_examples=300)
@given(token=st.text(max_size=60) | st.text("AZaz09-_.=+/ ", max_size=60))
def test_arbitrary_text_is_refused_without_raising(token: str) -> None:
    assert our_verdict(token, KEY) == (INVALID, None)
    if token.isascii():
        assert pyjwt_verdict(token, KEY) == (INVALID, None)


# --- The pieces against their references ---------------------------------------------------


@settings(max_examples=500)
@given(segment=st.text("ABYZabyz0189-_=+/.!é \n", max_size=12).map(str.encode))
def test_segments_decode_as_pyjwt_decodes_them(segment: bytes) -> None:
    try:
        expected: bytes | None = PyJWS._decode_base64url_segment(segment, "segment")
    except jwt.DecodeError:
        expected = None
    assert decode_segment(segment) == expected


@given(data=st.binary(max_size=40))
def test_encoded_bytes_decode_with_or_without_padding(data: bytes) -> None:
    encoded = base64.urlsafe_b64encode(data)
    assert decode_segment(encoded) == data
    assert decode_segment(encoded.rstrip(b"=")) == data


@settings(max_examples=300)
@given(key=st.binary(min_size=1, max_size=200), message=st.binary(max_size=300))
def test_the_prepared_key_computes_hmac_sha256(key: bytes, message: bytes) -> None:
    assert HS256Verifier(key).mac(message) == hmac.digest(key, message, "sha256")


def json_outcome(parse: Callable[[bytes], Any], document: bytes) -> str:
    try:
        value = parse(document)
    except (ValueError, RecursionError):
        return "refused"
    return repr(value)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    value = draw(JSON_VALUES)
    if draw(st.booleans()):
        document = json.dumps(value).encode()
    else:
        document = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and document:  # and something broken
        at = draw(st.integers(0, len(document) - 1))
        document = document[:at] + draw(st.binary(max_size=2)) + document[at + 1 :]
    return document


@settings(max_examples=500)
@given(document=json_documents())
def test_json_is_read_as_json_loads_reads_it(document: bytes) -> None:
    assert json_outcome(parse_json, document) == json_outcome(json.loads, document)


@pytest.mark.parametrize(
    "document",
    [
        b'{"a":18446744073709551615}',  # orjson's largest integer
        b'{"a":18446744073709551616}',  # which orjson would make a float
        b'{"a":-9223372036854775809}',
        b'{"a":123456789012345678901234567890}',
        b'{"a":1e400}',
        b'{"a":Infinity,"b":-Infinity,"c":NaN}',
        b'{"a":1,"a":2}',
        b'{"a":-0.0,"b":-0,"c":5e-324,"d":1.7976931348623157e308}',
        b'{"a":0.1000000000000000055511151231257827}',
        b'{"a":1.2345678901234567e-300,"b":9007199254740993.0}',
        b"[" * 63 + b"]" * 63,
        b"[" * 64 + b"]" * 64,
        b"[" * 1000 + b"]" * 1000,  # orjson takes it; json.loads reaches the recursion limit
        b"[" * 3000 + b"]" * 3000,
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        b"\xed\xa0\x80",
        '{"é":1}'.encode("utf-32"),
        b"{}\x0c",
        b"",
    ],
)
def test_json_edge_cases(document: bytes) -> None:
    assert json_outcome(parse_json, document) == json_outcome(json.loads, document)


# --- Vonage's tokens, and the verifier ingest uses -----------------------------------------


PINNED_SECRET = b"pinned-signature-secret-0123456789abcdef"
PINNED = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjBhNGI4YzNkLTEyMzQ"
    "tNDU2Ny04OWFiLWNkZWYwMTIzNDU2NyIsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6IjJjMjZiNDZiNjh"
    "mZmM2OGZmOTliNDUzYzFkMzA0MTM0MTM0MjJkNzA2NDgzYmZhMGY5OGE1ZTg4NjI2NmU3YWUiLCJhcGlfa2V5Ijo"
    "iYTFiMmMzZCIsImFwcGxpY2F0aW9uX2lkIjoiYWFhYWFhYWEtYmJiYi1jY2NjLWRkZGQtMDEyMzQ1Njc4OWFiIn0"
    ".Duz6xTh9ty4Y_zfy_Q_CUDtAjJ_krH0xXrUZx3fvQnQ"
)
"""A token with Vonage's claims for the body ``foo``, signed once by PyJWT and written down,
so that the verifier is held to fixed bytes as well as to PyJWT."""


def test_a_pinned_vonage_style_token() -> None:
    claims = HS256Verifier(PINNED_SECRET).claims(PINNED)
    assert claims == {
        "iat": 1_700_000_000,
        "jti": "0a4b8c3d-1234-4567-89ab-cdef01234567",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(b"foo").hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    assert registered_claims_failure(claims, now=1_700_000_000, leeway=0, require_iat=True) is None
    assert registered_claims_failure(claims, now=1_699_999_999, leeway=0, require_iat=True) == (
        NOT_YET_VALID
    )
    assert HS256Verifier(PINNED_SECRET + b"x").claims(PINNED) is None
    assert agreed_verdict(PINNED, PINNED_SECRET, now=1_700_000_000)[0] is None


def test_tokens_as_vonage_and_the_simulator_sign_them() -> None:
    body = b'{"event":"connectionCreated","sessionId":"2_MX4"}'
    signer = VonageSigner(SESSIONS_SECRET, api_key="a1b2c3d", application_id="app")
    verifier = SignatureVerifier(
        Secret(SESSIONS_SECRET),
        setting="INGEST_VIDEO_SESSIONS_SECRET",
        leeway_s=30,
        max_age_s=300,
        payload_hash="required",
        bearer_optional=True,
    )
    for token in (vonage_token(body, SESSIONS_SECRET), signer.token(body)):
        assert (
            agreed_verdict(token, SESSIONS_SECRET.encode(), now=time.time(), leeway=30)[0] is None
        )
        assert verifier.check({"Authorization": token}, body) is None
        assert verifier.check({"Authorization": f"Bearer {token}"}, body) is None
        assert verifier.check({"Authorization": token}, body + b" ") == (
            "payload_hash does not match the body"
        )


@pytest.mark.parametrize(
    "secret",
    [
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZI\n-----END PUBLIC KEY-----",
        '{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}',
    ],
    ids=["ssh", "pem", "jwk"],
)
def test_a_secret_pyjwt_refuses_is_refused_at_startup(secret: str) -> None:
    with pytest.raises(ValueError, match="INGEST_JWT_SECRET") as refused:
        SignatureVerifier(
            Secret(secret),
            setting="INGEST_JWT_SECRET",
            leeway_s=0,
            max_age_s=0,
            payload_hash="off",
            bearer_optional=False,
        )
    assert secret not in str(refused.value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    claim_set=claim_sets(),
    max_age=st.sampled_from([0, 60]),
    mode=st.sampled_from(["required", "if_present", "off"]),
    body_hash=st.sampled_from(["right", "upper", "as drawn", "number"]),
)
def test_signature_verifier_answers_as_with_pyjwt(
    claim_set: tuple[float, float, bool, dict[str, Any]], max_age: float, mode: str, body_hash: str
) -> None:
    now, leeway, _, claims = claim_set
    body = b'{"event":"session:started"}'
    if "payload_hash" in claims and body_hash != "as drawn":
        right = hashlib.sha256(body).hexdigest()
        claims["payload_hash"] = {"right": right, "upper": right.upper(), "number": 7}[body_hash]
    secret = "a-signature-secret-of-the-meetings-application"
    token = make_token(claims, secret.encode())
    verifier = SignatureVerifier(
        Secret(secret),
        setting="INGEST_JWT_SECRET",
        leeway_s=leeway,
        max_age_s=max_age,
        payload_hash=mode,
        bearer_optional=False,
    )
    with mock.patch.object(auth, "time", SimpleNamespace(time=lambda: pyjwt_clock(now))):
        ours = verifier.check({"Authorization": f"Bearer {token}"}, body)
    assert ours == pyjwt_check(
        token, secret, body, now=now, leeway=leeway, max_age=max_age, mode=mode
    )


def pyjwt_check(
    token: str, secret: str, body: bytes, *, now: float, leeway: float, max_age: float, mode: str
) -> str | None:
    """``SignatureVerifier.check`` as it was written over ``jwt.decode``."""
    failure, claims = pyjwt_decode(
        token, secret.encode(), now=now, leeway=leeway, require_iat=max_age > 0
    )
    if failure:
        return failure
    if max_age > 0:
        issued_at = claims["iat"]
        if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
            return INVALID
        if pyjwt_clock(now) - issued_at > max_age + leeway:
            return "token too old"
    if mode == "off":
        return None
    claimed = claims.get("payload_hash")
    if claimed is None:
        return "token has no payload_hash" if mode == "required" else None
    if not isinstance(claimed, str):
        return "payload_hash is not a string"
    if claimed.lower() != hashlib.sha256(body).hexdigest():
        return "payload_hash does not match the body"
    return None
