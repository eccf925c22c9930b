"""What a callback must satisfy before it is stored: pure checks, no I/O, no aiohttp.

* ``validation``: ``Content-Type``/``Content-Encoding``, and the body inspection every source
  shares (UTF-8 JSON object, string ``event``, bounded ids) with Meetings' view and key.
* ``video``: the Vonage Video view (a string ``sessionId``, the key; its bounded ids).
* ``auth``: the shared token and signed callbacks (JWT), one verifier per signature secret.
* ``jws``: HS256 JSON Web Tokens verified as PyJWT verifies them, without its per-call cost.

A failed check is a ``Rejection`` (status, error code, detail) the HTTP edge answers with.
"""
