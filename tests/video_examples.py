"""Vonage Video API callback bodies (contract §7), as the Video docs show them: one body per
constant, byte for byte as a test sends it. The session monitoring examples are those of the
docs' connection and stream events; ``ARCHIVE_AVAILABLE`` is the docs' archive status example.
"""

from __future__ import annotations

SESSION_ID = b"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr"
"""The ``sessionId`` of every session monitoring example."""
CONNECTION_ID = b"c053fcc8-c681-41d5-8ec2-7a9e1434a21e"
STREAM_ID = b"63245362-e00e-4834-8371-9397deb3e452"

CONNECTION_CREATED = (
    b'{"sessionId":"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr","projectId":"123456",'
    b'"event":"connectionCreated","timestamp":1470257688309,"connection":{"id":'
    b'"c053fcc8-c681-41d5-8ec2-7a9e1434a21e","createdAt":1470257688143,"data":"TOKENDATA"}}'
)
CONNECTION_DESTROYED = (
    b'{"sessionId":"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr","projectId":"123456",'
    b'"event":"connectionDestroyed","reason":"clientDisconnected","timestamp":1470258896953,'
    b'"connection":{"id":"c053fcc8-c681-41d5-8ec2-7a9e1434a21e","createdAt":1470257688143,'
    b'"data":""}}'
)
STREAM_CREATED = (
    b'{"sessionId":"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr","projectId":"123456",'
    b'"event":"streamCreated","timestamp":1470258860571,"stream":{"id":'
    b'"63245362-e00e-4834-8371-9397deb3e452","connection":{"id":'
    b'"c053fcc8-c681-41d5-8ec2-7a9e1434a21e","createdAt":1470257688143,"data":""},'
    b'"createdAt":1470258845416,"name":"","videoType":"camera"}}'
)
STREAM_DESTROYED = (
    b'{"sessionId":"2_MX4xMzExMjU3MX5-MTQ3MDI1NzY3OTkxOH45QXRr","projectId":"123456",'
    b'"event":"streamDestroyed","reason":"clientDisconnected","timestamp":1470258896953,'
    b'"stream":{"id":"63245362-e00e-4834-8371-9397deb3e452","connection":{"id":'
    b'"c053fcc8-c681-41d5-8ec2-7a9e1434a21e","createdAt":1470257688143,"data":""},'
    b'"createdAt":1470258845416,"name":"","videoType":"camera"}}'
)
SESSION_MONITORING = (CONNECTION_CREATED, CONNECTION_DESTROYED, STREAM_CREATED, STREAM_DESTROYED)

ARCHIVE_SESSION_ID = b"2_MX40NzIwMzJ-flR1ZSBPY3QgMjkgMTI6MTM6MjMgUERUIDIwMTN-MC45NDQ2MzE2NH4"
"""The ``sessionId`` of the archive example."""
ARCHIVE_ID = b"b40ef09b-3811-4726-b508-e41a0f96c68f"

ARCHIVE_AVAILABLE = (
    b'{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","createdAt":1384221380000,'
    b'"duration":328,"name":"Foo","partnerId":123456,"reason":"","resolution":"640x480",'
    b'"sessionId":"2_MX40NzIwMzJ-flR1ZSBPY3QgMjkgMTI6MTM6MjMgUERUIDIwMTN-MC45NDQ2MzE2NH4",'
    b'"size":18023312,"status":"available","url":"https://tokbox.com.archive2.s3.amazonaws.com/'
    b'123456/b40ef09b-3811-4726-b508-e41a0f96c68f/archive.mp4"}'
)
