"""The HTTP edge: how bytes on a connection become a request and an answer.

* ``protocol``: the server production runs (``IngestRunner``): aiohttp's, plus read deadlines,
  JSON answers for requests aiohttp cannot parse, and the connection cap's bookkeeping.
* ``connections``: the connection cap (``ConnectionGuard``) and the file-descriptor limit.
* ``exchange``: what every request gets around its handler (request id, metrics, access log,
  JSON 404/405 for what no route serves).
* ``responses``: the JSON error bodies every layer answers with.

What a callback must satisfy to be stored is in ``ingest.checks``; where it goes, in
``ingest.kafka``.
"""
