"""``meetings-simulate``: realistic Vonage Meetings or Vonage Video API traffic for a running
ingest service.

``meetings`` generates one meeting's callbacks; ``video`` one Video session's (with
``video_writer`` for what its callbacks share and ``video_archive`` for its archive); ``plan``
turns many sessions into a paced, repeatable schedule with Vonage's duplicates and reordering,
``sender`` POSTs it with retries (``signing``: Vonage's signed callbacks), ``tally``/
``progress``/``summary`` (with ``video_census``) report, and ``cli`` ties them together.
"""
