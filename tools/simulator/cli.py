"""``meetings-simulate``: play realistic meetings (Vonage Meetings, or Vonage Video API sessions
with ``--source video``) against an ingest service.

Exit status 0 when every callback was eventually accepted (2xx), 1 otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
import urllib.parse
from collections.abc import Callable

from schemas.sources import VIDEO_ARCHIVES_ROUTE, VIDEO_SESSIONS_ROUTE
from schemas.timestamps import parse_timestamp, to_epoch_ms
from servicekit.signals import stop_on_signals
from tools.simulator.plan import SOURCES, Plan, Scenario, build_plan
from tools.simulator.progress import Progress
from tools.simulator.sender import RetryPolicy, Sender, Target
from tools.simulator.signing import VonageSigner
from tools.simulator.summary import summary
from tools.simulator.tally import Tally

DEFAULT_URL = "http://127.0.0.1:8080"
SESSIONS_SECRET_ENV = "INGEST_VIDEO_SESSIONS_SECRET"
ARCHIVES_SECRET_ENV = "INGEST_VIDEO_ARCHIVES_SECRET"
"""The same variables ingest reads its Video signature secrets from."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = build_plan(
        Scenario(
            sessions=args.sessions,
            seed=args.seed if args.seed is not None else secrets.randbelow(1_000_000),
            start_ms=args.start if args.start is not None else time.time_ns() // 1_000_000,
            rate=args.rate,
            time_scale=args.time_scale,
            duplicate_rate=args.duplicate_rate,
            reorder_rate=args.reorder_rate,
            source=args.source,
            upload_before_stop_rate=args.upload_before_stop_rate,
        )
    )
    if args.dry_run:
        for delivery in plan.deliveries:
            sys.stdout.write(delivery.body.decode() + "\n")
        return 0
    secrets_by_route = {
        VIDEO_SESSIONS_ROUTE: args.video_sessions_secret,
        VIDEO_ARCHIVES_ROUTE: args.video_archives_secret,
    }
    target = Target(args.url, token=args.token, signers=_signers(plan, secrets_by_route))
    policy = RetryPolicy(
        max_attempts=args.max_attempts,
        max_wait_s=args.max_retry_wait,
        request_timeout_s=args.request_timeout,
    )
    kind = "meeting(s)" if args.source == "meetings" else "video session(s)"
    sys.stderr.write(
        f"sending {len(plan.deliveries)} callbacks of {args.sessions} {kind} to {args.url} "
        f"(seed {plan.scenario.seed}, about {plan.duration_s:.1f} s)\n"
    )
    began = time.monotonic()
    sender = Sender(plan, target, concurrency=args.concurrency, policy=policy)
    tally, interrupted = asyncio.run(_send(sender, show_progress=not args.quiet))
    elapsed = time.monotonic() - began
    for line in summary(plan, tally, elapsed_s=elapsed, interrupted=interrupted):
        sys.stdout.write(line + "\n")
    return 0 if tally.all_accepted else 1


def _signers(plan: Plan, secrets_by_route: dict[str, str | None]) -> dict[str, VonageSigner]:
    """A signer per Video route with a secret, in the name of the plan's project."""
    tenant = plan.tenant
    if tenant is None:  # Meetings callbacks are not signed the Video way
        return {}
    return {
        route: VonageSigner(secret, api_key=tenant.api_key, application_id=tenant.application_id)
        for route, secret in secrets_by_route.items()
        if secret
    }


async def _send(sender: Sender, *, show_progress: bool) -> tuple[Tally, bool]:
    """Run the sender with live progress; Ctrl-C or SIGTERM stops sending, in-flight requests
    finish, and the summary still follows."""
    stop = asyncio.Event()
    progress = Progress(sender.tally, sys.stderr) if show_progress else None
    display = asyncio.create_task(progress.run()) if progress else None
    try:
        with stop_on_signals(stop):
            tally = await sender.run(stop)
    finally:
        if display is not None:
            display.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await display
        if progress is not None:
            progress.show()
            progress.close()
    return tally, stop.is_set()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meetings-simulate",
        description="Generate realistic Vonage Meetings callbacks (many concurrent meetings, "
        "participants joining and leaving, hosts, recordings, room expiry), or with --source "
        "video Vonage Video API ones (sessions, connections, streams and screen shares, network "
        "drops and reconnects, archives), and POST them to ingest at a target rate, retrying on "
        "503 like Vonage. Exit 0 when every callback was accepted.",
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="meetings",
        help="meetings: Vonage Meetings callbacks; video: Vonage Video API session monitoring "
        "and archive status callbacks (default meetings)",
    )
    parser.add_argument(
        "--url",
        type=_http_url,
        default=DEFAULT_URL,
        help="ingest base URL; callbacks go to /callbacks/{sessions,recordings,rooms} as "
        "Vonage's three callback URLs would (Video: /video/sessions and /video/archives). A URL "
        f"with a path gets every callback (default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--sessions", type=_at_least(1, int), default=50, help="meetings or video sessions (50)"
    )
    parser.add_argument(
        "--rate", type=_positive, default=200.0, help="most callbacks per second (200)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="same seed, same callbacks in the same order (default: random, printed)",
    )
    parser.add_argument(
        "--start",
        type=_epoch_ms,
        default=None,
        help="when the first meeting starts, as 2021-11-02T15:53:28.753Z (default: now). With "
        "--seed, makes every body byte-identical across runs",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=None,
        help="meeting time per second of wall time: 600 plays a 40-minute meeting in 4 s "
        "(default: whatever makes the run average --rate). Body timestamps are compressed "
        "alike, so they agree with ingest's receive times",
    )
    parser.add_argument(
        "--duplicate-rate",
        type=_fraction,
        default=0.01,
        help="share of callbacks sent twice, as Vonage's retries do (0.01)",
    )
    parser.add_argument(
        "--reorder-rate",
        type=_fraction,
        default=0.02,
        help="share of callbacks delayed past 1-10 later ones (0.02)",
    )
    parser.add_argument(
        "--concurrency", type=_at_least(1, int), default=32, help="requests in flight (32)"
    )
    parser.add_argument(
        "--max-attempts",
        type=_at_least(1, int),
        default=6,
        help="requests per callback before giving up on 5xx/429/connection errors (6)",
    )
    parser.add_argument(
        "--max-retry-wait",
        type=_positive,
        default=10.0,
        help="longest wait between attempts, whatever Retry-After asks (10 s)",
    )
    parser.add_argument(
        "--request-timeout", type=_positive, default=10.0, help="per request, in seconds (10)"
    )
    parser.add_argument(
        "--upload-before-stop-rate",
        type=_fraction,
        default=0.1,
        help="video: share of sessions whose archive, when uploaded to the customer's bucket, "
        "has its 'uploaded' sent before its 'stopped', as Vonage warns happens (0.1)",
    )
    parser.add_argument("--token", default=None, help="shared token for X-Callback-Token")
    parser.add_argument(
        "--video-sessions-secret",
        default=os.environ.get(SESSIONS_SECRET_ENV) or None,
        metavar="SECRET",
        help="video: sign session monitoring callbacks with this signature secret, as Vonage's "
        f"secure callbacks do (default: ${SESSIONS_SECRET_ENV}, else unsigned)",
    )
    parser.add_argument(
        "--video-archives-secret",
        default=os.environ.get(ARCHIVES_SECRET_ENV) or None,
        metavar="SECRET",
        help=f"video: the same for archive status callbacks (default: ${ARCHIVES_SECRET_ENV})",
    )
    parser.add_argument("--quiet", action="store_true", help="no live progress on stderr")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the bodies, one per line in send order, and send nothing",
    )
    return parser


def _at_least(minimum: int, kind: Callable[[str], int]) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _http_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL with a host")
    return text


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _epoch_ms(text: str) -> int:
    try:
        return to_epoch_ms(parse_timestamp(text))
    except ValueError as exc:  # msgspec.ValidationError is a ValueError
        raise argparse.ArgumentTypeError(f"not an ISO-8601 timestamp with a zone: {exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
