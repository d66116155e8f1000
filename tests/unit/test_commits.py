"""Offsets are released for commit only when their batch, and every earlier one, is acked."""

from __future__ import annotations

from confluent_kafka import KafkaError, TopicPartition

from scalelab.components.commits import DeliveryError, PendingCommits


def offsets(partition: int, offset: int) -> list[TopicPartition]:
    return [TopicPartition("in", partition, offset)]


def test_offsets_wait_for_every_ack_of_their_batch() -> None:
    pending = PendingCommits()
    ack = pending.add(offsets(0, 3), 2)
    ack(None, None)
    assert pending.ready() == []
    ack(None, None)
    assert [(tp.partition, tp.offset) for tp in pending.ready()] == [(0, 3)]
    assert len(pending) == 0


def test_a_later_batch_never_commits_past_an_unacked_earlier_one() -> None:
    pending = PendingCommits()
    first = pending.add(offsets(0, 3), 1)
    second = pending.add(offsets(0, 5), 1)
    second(None, None)
    assert pending.ready() == []
    first(None, None)
    assert [(tp.partition, tp.offset) for tp in pending.ready()] == [(0, 5)]


def test_latest_offset_per_partition() -> None:
    pending = PendingCommits()
    pending.add(offsets(0, 3) + offsets(1, 7), 0)
    pending.add(offsets(0, 4), 0)
    ready = sorted((tp.partition, tp.offset) for tp in pending.ready())
    assert ready == [(0, 4), (1, 7)]


class Delivered:
    """What librdkafka hands the delivery callback: the message, with its topic."""

    def topic(self) -> str:
        return "out"


def test_a_refused_result_is_never_committed_past() -> None:
    """The old queue popped the refused batch, so the next `ready()` (a revoke, the
    close) released the later batches' offsets past the undelivered result."""
    pending = PendingCommits()
    before = pending.add(offsets(0, 3), 1)
    refused = pending.add(offsets(0, 4), 1)
    after = pending.add(offsets(0, 9), 1)
    before(None, Delivered())
    refused(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), Delivered())
    after(None, Delivered())
    assert [(tp.partition, tp.offset) for tp in pending.ready()] == [(0, 3)]
    for _ in range(3):  # the worker loop, the revoke, the close: nothing past offset 3
        assert pending.ready() == []
    assert pending.failure is not None
    assert pending.failure.topic == "out"
    assert "too large" in pending.failure.error.lower()


def test_a_refusal_in_a_later_batch_is_reported_at_once() -> None:
    pending = PendingCommits()
    pending.add(offsets(0, 3), 1)
    later = pending.add(offsets(0, 5), 1)
    later(KafkaError(KafkaError._MSG_TIMED_OUT), Delivered())
    assert isinstance(pending.failure, DeliveryError)
    assert pending.ready() == []


def test_forgotten_partitions_are_never_committed() -> None:
    """Lost or revoked partitions belong to another member now: their pending offsets go."""
    pending = PendingCommits()
    ack = pending.add(offsets(0, 3) + offsets(1, 7), 1)
    pending.forget([TopicPartition("in", 1)])
    ack(None, Delivered())
    assert [(tp.partition, tp.offset) for tp in pending.ready()] == [(0, 3)]
