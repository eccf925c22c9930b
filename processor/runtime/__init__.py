"""The Kafka runtime around the pure engine: consume, apply, commit, restore."""

from processor.runtime.clients import RuntimeClients, kafka_clients
from processor.runtime.failures import PartitionFailedError
from processor.runtime.service import ProcessorService

__all__ = ["PartitionFailedError", "ProcessorService", "RuntimeClients", "kafka_clients"]
