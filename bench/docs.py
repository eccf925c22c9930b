"""``python -m bench --write-docs``: the run's report into ``docs/performance.md``.

The report replaces whatever stands between the two markers, whole, with when and where it was
measured: the document always shows the latest full run, never a chosen one (earlier reports
are in the file's history).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN = "<!-- make bench report: begin -->"
END = "<!-- make bench report: end -->"


def write_report(lines: Sequence[str], document: Path = DOCUMENT) -> None:
    """Put ``lines`` between the markers of ``document`` (``ValueError`` when they are missing:
    the document's prose is not rewritten)."""
    text = document.read_text(encoding="utf-8")
    before, begin, rest = text.partition(BEGIN)
    _, end, after = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{document} has no {BEGIN} ... {END} section")
    measured = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}."
    )
    block = "\n".join([BEGIN, measured, "", "```text", *lines, "```", END])
    document.write_text(before + block + after, encoding="utf-8")
