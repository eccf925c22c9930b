"""What a callback must satisfy before it is stored: pure checks, no I/O, no aiohttp.

* ``validation``: ``Content-Type``/``Content-Encoding`` and the body (UTF-8 JSON object, string
  ``event``, ids), and the record key it yields.
* ``auth``: the shared token and Vonage-style signed callbacks (JWT).

A failed check is a ``Rejection`` (status, error code, detail) the HTTP edge answers with.
"""
