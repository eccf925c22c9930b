"""Errors of the embedded broker, each phrased so the reader knows what to do next."""


class BrokerError(Exception):
    """The embedded Kafka broker could not be provided."""


class BrokerSetupError(BrokerError):
    """A prerequisite (Java, Maven, the jars) is missing or unusable."""


class BrokerStartError(BrokerError):
    """The broker process was started but did not become ready, or exited."""
