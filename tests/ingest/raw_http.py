"""HTTP/1.1 over a raw socket: the exact bytes a hostile client sends, and what came back.

aiohttp's client (like every client library) normalises requests, so it cannot send a NUL in a
header, two ``Content-Length`` headers or invalid UTF-8 in the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

TOKEN = "a-long-shared-callback-token"
SECRET = "signature-secret-of-the-meetings-application"


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return orjson.loads(self.body)


def request_bytes(
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    target: bytes = b"/callbacks",
    method: bytes = b"POST",
    content_length: bool = True,
) -> bytes:
    """A request with ``Host`` and (unless told otherwise) a matching ``Content-Length``."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: ingest"]
    lines += [name + b": " + value for name, value in headers or []]
    if content_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def signed_headers(body: bytes, *, token: bytes = TOKEN.encode()) -> list[tuple[bytes, bytes]]:
    """The shared token and a signed JWT over ``body``: what an authentic sender adds."""
    now = int(time.time())
    claims = {"iat": now, "exp": now + 300, "payload_hash": hashlib.sha256(body).hexdigest()}
    bearer = jwt.encode(claims, SECRET, algorithm="HS256")
    return [
        (b"Content-Type", b"application/json"),
        (b"X-Callback-Token", token),
        (b"Authorization", b"Bearer " + bearer.encode()),
    ]


async def exchange(
    port: int, data: bytes, *, within: float = 10.0, half_close: bool = False
) -> RawResponse | None:
    """Send ``data``, read one response; ``None`` when the server closed without answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        async with asyncio.timeout(within):
            return await read_response(reader)
    except (ConnectionResetError, BrokenPipeError):
        return None
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> RawResponse | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise AssertionError(f"a truncated response head: {exc.partial!r}") from None
    response = _parse_head(head[:-4])
    body = await reader.readexactly(int(response.headers.get("content-length", "0")))
    return RawResponse(response.status, response.headers, body)


def exchange_blocking(port: int, data: bytes, *, within: float = 10.0) -> RawResponse | None:
    """``exchange`` for synchronous tests (hypothesis drives those)."""
    with socket.create_connection(("127.0.0.1", port), timeout=within) as connection:
        # Answered and closed before the whole request was sent: the answer is still there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(data)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    return None
                received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            response = _parse_head(head)
            length = int(response.headers.get("content-length", "0"))
            while len(body) < length:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                body += chunk
        except ConnectionResetError:
            return None
        return RawResponse(response.status, response.headers, body[:length])


def _parse_head(head: bytes) -> RawResponse:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split(" ")[1]), headers, b"")
