"""What ``make run`` prints works: each ``curl`` of its banner, sent to ingest as the stack
runs it (no authentication), is stored. Broker-free: the production server in this process on
the fake publisher."""

from __future__ import annotations

import re
import shlex

import aiohttp

from tests.ingest.inprocess import fake_settings, running_ingest
from tests.video_examples import CONNECTION_CREATED
from tools.devkafka.stack import banner


def curl_commands(text: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Each ``curl`` of ``text`` as (url, headers, body)."""
    commands = []
    for command in re.findall(r"curl .*?'\n", text.replace("\\\n", " "), flags=re.S):
        words = shlex.split(command)
        url = next(word for word in words if word.startswith("http://"))
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        body = words[words.index("-d") + 1].encode()
        commands.append((url, headers, body))
    return commands


async def test_every_curl_of_the_banner_is_stored() -> None:
    settings = fake_settings(auth_token=None, jwt_secret=None)
    async with running_ingest(settings) as ingest, aiohttp.ClientSession() as http:
        commands = curl_commands(banner(ingest.port, 8081, "127.0.0.1:9092"))
        answers = []
        for url, headers, body in commands:
            async with http.post(url, data=body, headers=headers) as response:
                answers.append((url.rpartition(str(ingest.port))[2], response.status))
        stored = [
            (record.header("source-route"), record.body) for record in ingest.publisher.records
        ]
    assert answers == [("/callbacks", 204), ("/video/sessions", 200)]
    assert stored[1] == (b"/video/sessions", CONNECTION_CREATED)  # Vonage's documented example
