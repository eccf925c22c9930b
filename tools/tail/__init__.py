"""``meetings-tail``: follow a topic of the pipeline and print one line per record."""

from tools.tail.cli import main

__all__ = ["main"]
