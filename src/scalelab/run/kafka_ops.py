"""Kafka operations the orchestrator needs: topics, offsets, consumer lag, group members."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from scalelab.errors import ComponentError
from scalelab.spec.models import BrokerSpec


def admin(bootstrap: str) -> AdminClient:
    """An admin client that stays quiet: its failures reach us as exceptions from its futures,
    and its connection log would otherwise spill over the live view after teardown."""
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def create_topics(client: AdminClient, broker: BrokerSpec, partitions: int) -> None:
    """Input and output topics with the spec's partitions, the dead-letter topic with one."""
    retention = str(int(broker.retention * 1000))
    wanted = [
        (broker.input_topic, partitions),
        (broker.output_topic, partitions),
        (broker.dead_letter_topic, 1),
    ]
    topics = [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=broker.replication,
            config={"retention.ms": retention},
        )
        for name, n in wanted
    ]
    for name, future in client.create_topics(topics, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise ComponentError("broker", f"cannot create topic {name}: {error}") from error


def topic_partitions(client: AdminClient, topic: str) -> list[int]:
    metadata = client.list_topics(topic, timeout=10)
    return sorted(metadata.topics[topic].partitions)


class OffsetReader:
    """Reads end offsets and a group's committed offsets with one long-lived consumer."""

    def __init__(self, bootstrap: str, group: str):
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )

    def end_offsets(self, topic: str) -> dict[int, int]:
        metadata = self.consumer.list_topics(topic, timeout=10)
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.topics[topic].partitions
        }

    def committed(self, topic: str, partitions: list[int]) -> dict[int, int]:
        result = self.consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in result}

    def lag(self, topic: str, ends: dict[int, int] | None = None) -> int:
        """Messages not yet committed by the group; `ends` saves a second watermark pass."""
        ends = self.end_offsets(topic) if ends is None else ends
        committed = self.committed(topic, list(ends))
        return sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())

    def close(self) -> None:
        self.consumer.close()


def read_keys(bootstrap: str, topic: str, timeout: float = 30) -> list[str]:
    """Every message key of a (small) topic, read from the beginning without a group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "scalelab-audit",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        consumer.assign(parts)
        keys: list[str] = []
        deadline = time.monotonic() + timeout
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            keys.append((message.key() or b"").decode())
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            if offset + 1 >= ends[partition]:
                remaining.discard(partition)
        return keys
    finally:
        consumer.close()


def group_members(client: AdminClient, group: str) -> tuple[int, int]:
    """(members, partitions assigned) of a consumer group; (0, 0) while it does not exist."""
    try:
        description = client.describe_consumer_groups([group])[group].result(timeout=5)
    except (KafkaException, TimeoutError):
        return 0, 0
    assigned = sum(len(m.assignment.topic_partitions) for m in description.members)
    return len(description.members), assigned
