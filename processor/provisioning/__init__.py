"""Topic provisioning: the contract §4 topics created where missing and checked where present.

``layout`` plans and creates the topics and checks partition counts and cleanup policies;
``replication`` checks replicas and ``min.insync.replicas``; ``compaction`` keeps the compacted
topics' configs where restores stay short; ``cli`` is ``python -m processor topics``.
"""

from processor.provisioning.layout import (
    DEFAULT_TIMEOUT_S,
    KafkaUnreachableError,
    ProvisionReport,
    TopicLayoutError,
    TopicPlan,
    TopicStatus,
    ensure_topics,
    plan_topics,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "KafkaUnreachableError",
    "ProvisionReport",
    "TopicLayoutError",
    "TopicPlan",
    "TopicStatus",
    "ensure_topics",
    "plan_topics",
]
