"""Offsets that may be committed once every result of their batch is acknowledged.

A worker produces a batch's results (and dead letters) and goes straight on
to the next batch; the broker's acknowledgements arrive through delivery
callbacks. Only when every message of a batch is acknowledged, and every
earlier batch too (offsets must not run ahead of an unacknowledged result),
are that batch's offsets handed back for an asynchronous commit. That keeps
delivery at-least-once without two broker round trips per frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, TopicPartition

from scalelab.errors import ScalelabError


class DeliveryError(ScalelabError):
    """The broker refused a result: its input must not be committed, so the worker stops."""


@dataclass
class _Batch:
    offsets: list[TopicPartition]
    remaining: int
    errors: list[str] = field(default_factory=list)


class PendingCommits:
    def __init__(self) -> None:
        self._batches: deque[_Batch] = deque()

    def add(self, offsets: list[TopicPartition], messages: int) -> Callable[..., None]:
        """Register a batch of `messages` results; returns the delivery callback for each."""
        batch = _Batch(offsets, messages)
        self._batches.append(batch)

        def delivered(error: KafkaError | None, message: Message) -> None:
            batch.remaining -= 1
            if error is not None:
                batch.errors.append(str(error))

        return delivered

    def ready(self) -> list[TopicPartition]:
        """Offsets of the acknowledged batches at the head of the queue (latest per partition).

        Raises DeliveryError if one of them had a result the broker refused.
        """
        latest: dict[tuple[str, int], TopicPartition] = {}
        while self._batches and self._batches[0].remaining <= 0:
            batch = self._batches.popleft()
            if batch.errors:
                raise DeliveryError(f"results not delivered: {batch.errors[0]}")
            for tp in batch.offsets:
                latest[(tp.topic, tp.partition)] = tp
        return list(latest.values())

    def __len__(self) -> int:
        return len(self._batches)
