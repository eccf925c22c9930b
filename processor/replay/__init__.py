"""``python -m processor replay``: re-derive history from the raw topic into other topics."""

from processor.replay.cli import main

__all__ = ["main"]
