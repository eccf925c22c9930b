"""Ingest's metrics: what is measured, how it is counted cheaply, how it is exposed.

* ``defs``: every metric, declared once with its meaning.
* ``tally``: per-request counts as plain integers, handed to prometheus-client in bulk.
* ``prometheus``: the ``/metrics`` exposition (summed over workers when there are several).
"""
