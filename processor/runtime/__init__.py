"""The Kafka runtime around the pure engine: consume, apply, commit, restore."""

from processor.runtime.service import ProcessorService

__all__ = ["ProcessorService"]
