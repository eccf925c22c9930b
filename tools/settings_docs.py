"""The settings tables of docs/operations.md, generated from the settings declarations.

``python -m tools.settings_docs`` rewrites the tables between the ``<!-- settings:NAME -->`` and
``<!-- /settings:NAME -->`` markers of docs/operations.md (``--check`` only says whether they are
stale); a test fails when they are stale, so a setting's name, default and meaning are written
once, where it is declared.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ingest.settings import IngestSettings
from processor.settings import ProcessorSettings
from servicekit.settings import DeclaredSetting, declared

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
"""The document that holds the marked tables."""

_BLOCK = re.compile(
    r"(<!-- settings:(?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- /settings:(?P=name) -->)", re.S
)


def tables() -> dict[str, str]:
    """Markdown table per section: ``shared`` (read by both services), ``ingest``, ``processor``."""
    ingest = list(declared(IngestSettings))
    processor = list(declared(ProcessorSettings))
    shared_names = {s.spec.env for s in ingest} & {s.spec.env for s in processor}
    shared = [s for s in ingest if s.spec.env in shared_names]
    return {
        "shared": _table(shared),
        "ingest": _table([s for s in ingest if s.spec.env not in shared_names]),
        "processor": _table([s for s in processor if s.spec.env not in shared_names]),
    }


def _table(settings: list[DeclaredSetting]) -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.spec.env}` | `{s.default_shown}` | {s.spec.doc} |" for s in settings]
    return "\n".join(rows) + "\n"


def render(document: str) -> str:
    """``document`` with every marked table replaced by its generated version."""
    generated = tables()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in generated:
            raise KeyError(f"{DOCUMENT.name} marks an unknown settings table {name!r}")
        return f"{match[1]}{generated[name]}{match[4]}"

    return _BLOCK.sub(replace, document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.settings_docs",
        description="Rewrite the settings tables of docs/operations.md from the settings "
        "declarations.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the tables are stale",
    )
    args = parser.parse_args(argv)
    text = DOCUMENT.read_text(encoding="utf-8")
    rendered = render(text)
    if args.check:
        if rendered != text:
            sys.stdout.write(
                f"stale settings tables in {DOCUMENT}: run python -m tools.settings_docs\n"
            )
            return 1
        sys.stdout.write(f"the settings tables of {DOCUMENT} are up to date\n")
        return 0
    DOCUMENT.write_text(rendered, encoding="utf-8")
    sys.stdout.write(f"rewrote the settings tables of {DOCUMENT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
