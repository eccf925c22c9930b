"""JSON error bodies (contract §3.3: ``{"error": code, "detail": text}``) for every layer that
answers: the handlers, the request observer, and the connection protocol that answers before any
handler runs (unparseable requests, read timeouts, the connection cap)."""

from __future__ import annotations

from http import HTTPStatus

import orjson

DETAIL_LIMIT = 200
"""Characters of client-supplied text (a path, a parser message) echoed in a body or log."""


def error_code(status: int) -> str:
    """A stable code from the status: ``404`` -> ``not_found``."""
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return "internal_error"
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        return "unavailable"  # as the handlers' own 503s
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


def printable(text: str, limit: int = DETAIL_LIMIT) -> str:
    """One line of ASCII, safe to log and to put in JSON whatever the client sent: non-UTF-8
    bytes arrive as lone surrogates, which orjson (and log pipelines) refuse."""
    one_line = " ".join(text.split())
    shown = one_line.encode("ascii", "backslashreplace").decode("ascii")
    if len(shown) > limit:
        return shown[:limit] + "..."
    return shown


def raw_error_response(
    status: int, detail: str, *, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for answers written straight
    to the transport (no request object exists yet)."""
    body = orjson.dumps({"error": error_code(status), "detail": detail})
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body
