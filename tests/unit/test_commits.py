"""Offsets are released for commit only when their batch, and every earlier one, is acked."""

from __future__ import annotations

import pytest
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


def test_a_refused_result_stops_the_commits() -> None:
    pending = PendingCommits()
    ack = pending.add(offsets(0, 3), 1)
    ack(KafkaError(KafkaError._MSG_TIMED_OUT), None)
    with pytest.raises(DeliveryError):
        pending.ready()
