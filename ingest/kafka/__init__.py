"""Publication to Kafka: the production ``Publisher`` (``ingest.publication``) and what it needs.

* ``publisher``: ``RawPublisher``, one idempotent ``acks=all`` producer per process,
  readiness, the raw topic's presence, reconnection after an outage.
* ``batching``: the record batches ingest builds per partition and their acknowledgements.

Everything aiokafka-shaped in ingest lives here; the HTTP edge sees only the ``Publisher``
interface, so it runs (and is tested) without a broker.
"""
