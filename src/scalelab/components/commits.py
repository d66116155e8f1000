"""Offsets that may be committed once every result of their batch is acknowledged.

A worker produces a batch's results (and dead letters) and goes straight on
to the next batch; the broker's acknowledgements arrive through delivery
callbacks. Only when every message of a batch is acknowledged, and every
earlier batch too (offsets must not run ahead of an unacknowledged result),
are that batch's offsets handed back for an asynchronous commit. That keeps
delivery at-least-once without two broker round trips per frame.

Guarantee: **at-least-once**. A batch with a result the broker refused stays
at the head of the queue for good: nothing at or after it is ever released,
whoever asks (the worker loop, a revoke, the shutdown), so the refused
message's input offset is never committed and the group redelivers it. Kafka
transactions (``send_offsets_to_transaction``) would give exactly-once output,
but each batch would wait for a transaction commit on the hot path and the
tracker would have to read committed records only; here duplicates are
allowed and counted by the analysis instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, TopicPartition

from scalelab.errors import ScalelabError

PartitionKey = tuple[str, int]


class DeliveryError(ScalelabError):
    """The broker refused a result: its input must not be committed, so the worker stops."""

    def __init__(self, topic: str, error: str):
        self.topic = topic
        self.error = error
        super().__init__(f"result not delivered to topic {topic}: {error}")


@dataclass
class _Batch:
    offsets: dict[PartitionKey, int]
    remaining: int
    failed: bool = False


class PendingCommits:
    """Batches in processing order, each with its next offsets and its unacked results."""

    def __init__(self) -> None:
        self._batches: deque[_Batch] = deque()
        self.failure: DeliveryError | None = None

    def add(self, offsets: list[TopicPartition], messages: int) -> Callable[..., None]:
        """Register a batch of `messages` results; returns the delivery callback for each."""
        batch = _Batch({(tp.topic, tp.partition): tp.offset for tp in offsets}, messages)
        self._batches.append(batch)

        def delivered(error: KafkaError | None, message: Message | None) -> None:
            batch.remaining -= 1
            if error is not None:
                batch.failed = True
                if self.failure is None:  # the first refusal is the one worth naming
                    topic = str(message.topic()) if message is not None else "?"
                    self.failure = DeliveryError(topic, str(error))

        return delivered

    def ready(self) -> list[TopicPartition]:
        """Offsets of the acknowledged batches at the head of the queue (latest per partition).

        Stops at the first batch that is not fully acknowledged or had a refused
        result; a refused batch is never removed, so no later call commits past it.
        """
        latest: dict[PartitionKey, int] = {}
        while self._batches and self._batches[0].remaining <= 0 and not self._batches[0].failed:
            latest.update(self._batches.popleft().offsets)
        return [TopicPartition(topic, part, offset) for (topic, part), offset in latest.items()]

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop pending offsets of partitions this worker no longer owns (lost or revoked).

        Their new owner reads from the last committed offset; committing ours
        later could move its offsets. The batches stay, so the order and any
        refusal still hold for the other partitions.
        """
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for batch in self._batches:
            for key in gone & batch.offsets.keys():
                del batch.offsets[key]

    def __len__(self) -> int:
        return len(self._batches)
