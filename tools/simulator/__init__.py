"""``meetings-simulate``: realistic Vonage Meetings traffic for a running ingest service.

``meetings`` generates one meeting's callbacks, ``plan`` turns many meetings into a paced,
repeatable schedule with Vonage's duplicates and reordering, ``sender`` POSTs it with retries,
``tally``/``progress``/``summary`` report, and ``cli`` ties them together.
"""
