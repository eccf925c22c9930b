"""``meetings-diff PREFIX_A PREFIX_B``: compare two sets of derived topics (contract §4)."""

from tools.diff.cli import main

__all__ = ["main"]
