"""The final report of a simulation run."""

from __future__ import annotations

from tools.simulator.plan import Plan, Source
from tools.simulator.tally import Tally
from tools.simulator.video_census import census

_WORDS: dict[Source, tuple[str, str, str]] = {
    "meetings": ("meeting", "meetings", "meetings"),
    "video": ("video session", "video sessions", "sessions"),
}
"""Per source: one session, several, and what their time span is of."""


def summary(plan: Plan, tally: Tally, *, elapsed_s: float, interrupted: bool) -> list[str]:
    scenario = plan.scenario
    minutes = plan.meeting_span_ms / 60_000
    achieved = tally.finished / elapsed_s if elapsed_s > 0 else 0.0
    share = tally.accepted / tally.planned if tally.planned else 1.0
    statuses = "  ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
    verdict = (
        "every callback was accepted"
        if tally.all_accepted
        else f"{tally.planned - tally.accepted} callbacks NOT accepted"
    )
    if interrupted:
        verdict += " (interrupted)"
    one, several, span = _WORDS[scenario.source]
    sessions = f"{scenario.sessions} {one if scenario.sessions == 1 else several}"
    video = census(d.body for d in plan.deliveries).lines() if scenario.source == "video" else []
    return [
        f"simulated {sessions} (seed {scenario.seed}): "
        f"{minutes:.0f} min of {span} at time scale {plan.time_scale:,.0f}x",
        *video,
        f"  callbacks  {tally.planned} planned ({plan.duplicates} re-sent, "
        f"{plan.delayed} delayed past later ones), {tally.sent} sent",
        f"  accepted   {tally.accepted}/{tally.planned} ({share:.1%})  refused {tally.refused}  "
        f"gave up {tally.gave_up}  retries {tally.retries}",
        f"  rate       {achieved:,.1f} callbacks/s (target {scenario.rate:g})  "
        f"duration {elapsed_s:.2f} s",
        f"  latency    p50 {_ms(tally.latency_ms(0.5))}  p99 {_ms(tally.latency_ms(0.99))}",
        f"  statuses   {statuses or 'none'}",
        f"  result     {verdict}",
    ]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"
