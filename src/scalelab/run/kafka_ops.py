"""Kafka operations the orchestrator needs: topics, offsets, consumer lag, group members.

Every client made here is closed deterministically by its owner while the
broker still runs (see `KafkaAdmin`), and every Kafka failure leaves this
module as a `BrokerError` that names the broker and keeps the cause.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from scalelab.errors import ComponentError, ScalelabError
from scalelab.spec.models import BrokerSpec

REQUEST_TIMEOUT_S = 5.0
# librdkafka aborts the process ("rd_kafka_enq_once_del_source_return: Assertion
# `eonce->refcnt > 0' failed", librdkafka issue #4605, open in 2.16) when a coordinator
# admin request (describe or alter a group) times out while one of its broker requests is
# still in flight, and that request ends later. Seen here once, on a cluster, just after a
# broker restart, while the group coordinator was loading. So such a request may wait far
# longer than any broker request can (the admin client's socket timeout); the orchestrator
# still waits only REQUEST_TIMEOUT_S for its answer and leaves the rest to finish alone.
ADMIN_SOCKET_TIMEOUT_MS = 10_000
GROUP_REQUEST_TIMEOUT_S = 30.0
CREATE_TOPICS_REQUEST_TIMEOUT_S = 40.0  # above its 30 s operation timeout
CLOSE_TIMEOUT_S = 10.0
LEADER_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
}
READ_BATCH = 500


class BrokerError(ComponentError):
    """A Kafka call failed: names the broker, the operation, and keeps the client's error."""

    def __init__(self, operation: str, cause: object):
        self.operation = operation
        self.cause = cause
        super().__init__("broker", f"{operation} failed: {cause}")


class TopicMismatchError(ScalelabError):
    """An existing topic has another partition count than the spec asks for."""

    exit_code = 2

    def __init__(self, topic: str, existing: int, wanted: int):
        self.topic = topic
        self.existing = existing
        self.wanted = wanted
        super().__init__(
            f"topic {topic} already exists with {existing} partitions, the spec asks for "
            f"{wanted}: set broker.partitions={existing}, use other topic names, "
            "or delete the topic"
        )


@contextmanager
def broker_call(operation: str) -> Iterator[None]:
    """Turn a client's KafkaException (or a request timeout) into a BrokerError."""
    try:
        yield
    except KafkaException as error:
        raise BrokerError(operation, error.args[0] if error.args else error) from error
    except TimeoutError as error:
        raise BrokerError(operation, "no answer in time") from error


class KafkaAdmin:
    """The orchestrator's AdminClient, freed deterministically by `close()`.

    confluent-kafka's AdminClient (2.x) has no close(): its native handle is
    destroyed when the last Python reference goes. A traceback frame holding
    the client kept it alive until after the broker had stopped, and the
    destroy then hung in `thrd_join`. So only this object holds the client:
    `close()` drops that one reference while the broker still runs, and frames
    that outlive it (in a traceback) hold only this empty shell.
    """

    def __init__(self, bootstrap: str):
        # quiet: failures reach us as exceptions from the futures, and the connection log
        # would otherwise spill over the live view after teardown
        self._client: AdminClient | None = AdminClient(
            {
                "bootstrap.servers": bootstrap,
                "log_level": 0,
                "socket.timeout.ms": ADMIN_SOCKET_TIMEOUT_MS,
            }
        )

    @property
    def client(self) -> AdminClient:
        """The live client; never keep it in a variable (that would outlive `close()`)."""
        if self._client is None:
            raise ScalelabError("the Kafka admin client is closed")
        return self._client

    def close(self) -> bool:
        """Destroy the native client now (idempotent); False if that did not end in time."""
        holder = [self._client] if self._client is not None else []
        self._client = None

        def destroy() -> None:
            close = getattr(holder[0], "close", None)  # confluent-kafka versions that have one
            if close is not None:
                close()
            holder.clear()  # the last reference: Admin_dealloc, rd_kafka_destroy

        return release(destroy) if holder else True

    def __enter__(self) -> KafkaAdmin:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def release(destroy: Callable[[], None], timeout: float = CLOSE_TIMEOUT_S) -> bool:
    """Close a Kafka client in a daemon thread and wait for it at most `timeout` seconds.

    Closed while the broker runs, a client goes in milliseconds. A broker that
    died on its own can leave librdkafka's destroy waiting forever in
    `thrd_join`; the daemon thread then keeps waiting alone and the run goes on
    to its teardown (the process exits without joining it).
    """
    done = threading.Event()

    def run() -> None:
        try:
            destroy()
        finally:
            done.set()

    threading.Thread(target=run, name="kafka-client-close", daemon=True).start()
    return done.wait(timeout)


def admin(bootstrap: str) -> KafkaAdmin:
    return KafkaAdmin(bootstrap)


def create_topics(
    client: KafkaAdmin, broker: BrokerSpec, partitions: int, more_inputs: Sequence[str] = ()
) -> None:
    """Input and output topics with the spec's partitions, the dead-letter topic with one.

    A topic that already exists (external broker, reused storage) must have the
    partitions the spec asks for: a silent mismatch changes what the run measures.
    `more_inputs` are further input topics (the Flink join's second stream).
    """
    retention = str(int(broker.retention * 1000))
    wanted = {broker.input_topic: partitions, broker.output_topic: partitions}
    wanted.update({topic: partitions for topic in more_inputs})
    topics = [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=broker.replication,
            config={"retention.ms": retention},
        )
        for name, n in [*wanted.items(), (broker.dead_letter_topic, 1)]
    ]
    with broker_call("create topics"):
        futures = client.client.create_topics(
            topics, operation_timeout=30, request_timeout=CREATE_TOPICS_REQUEST_TIMEOUT_S
        )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise ComponentError("broker", f"cannot create topic {name}: {error}") from error
            _check_partitions(client, name, wanted.get(name))


def _check_partitions(client: KafkaAdmin, topic: str, wanted: int | None) -> None:
    if wanted is None:
        return
    existing = len(topic_partitions(client, topic))
    if existing != wanted:
        raise TopicMismatchError(topic, existing, wanted)


def topic_partitions(client: KafkaAdmin, topic: str) -> list[int]:
    with broker_call(f"read metadata of {topic}"):
        metadata = client.client.list_topics(topic, timeout=10)
    return sorted(metadata.topics[topic].partitions)


def commit_offsets(client: KafkaAdmin, group: str, topic: str, offsets: Mapping[int, int]) -> None:
    """Set a consumer group's committed offsets (the group must have no active member)."""
    parts = [TopicPartition(topic, p, offset) for p, offset in offsets.items()]
    request = [ConsumerGroupTopicPartitions(group, parts)]
    with broker_call(f"commit start offsets of {topic} for {group}"):
        futures = client.client.alter_consumer_group_offsets(
            request, request_timeout=GROUP_REQUEST_TIMEOUT_S
        )
        futures[group].result(timeout=REQUEST_TIMEOUT_S * 3)


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group as the broker describes it."""

    member_id: str
    client_id: str
    partitions: tuple[int, ...]


def describe_group(client: KafkaAdmin, group: str) -> list[GroupMember] | None:
    """The group's members; None when the broker did not answer in time (or no group yet)."""
    try:
        future = client.client.describe_consumer_groups(
            [group], request_timeout=GROUP_REQUEST_TIMEOUT_S
        )
        description = future[group].result(timeout=REQUEST_TIMEOUT_S)
    except (KafkaException, TimeoutError):
        return None
    return [
        GroupMember(
            str(m.member_id),
            str(m.client_id),
            tuple(sorted(tp.partition for tp in m.assignment.topic_partitions)),
        )
        for m in description.members
    ]


class GroupWatch:
    """Membership changes of a consumer group between one look and the next.

    Platform-neutral: it asks the broker, so a worker that died, was fenced
    (paused past its session timeout) or rejoined shows up the same way on
    every platform. A member that rejoins gets a new member id: it shows as
    one member leaving and one joining.
    """

    def __init__(self, client: KafkaAdmin, group: str):
        self.client = client
        self.group = group
        self.members: dict[str, GroupMember] | None = None

    def changes(self) -> list[tuple[str, GroupMember]]:
        """("left" | "joined", member) since the last look; the first look is the baseline."""
        members = describe_group(self.client, self.group)
        if members is None:
            return []  # no answer this time: compare at the next look
        now = {m.member_id: m for m in members}
        before, self.members = self.members, now
        if before is None:
            return []
        left = [("left", m) for key, m in before.items() if key not in now]
        return left + [("joined", m) for key, m in now.items() if key not in before]


def group_members(client: KafkaAdmin, group: str) -> tuple[int, int]:
    """(members, partitions assigned) of a consumer group; (0, 0) while it does not exist."""
    members = describe_group(client, group) or []
    return len(members), sum(len(m.partitions) for m in members)


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 0,  # failures reach us as exceptions; logs would spill over the CLI
        }
    )


def _end_offsets(consumer: Consumer, topic: str, patience: float = 20.0) -> dict[int, int]:
    """End offsets of every partition; waits out a new topic's metadata and leader election."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return _watermarks(consumer, topic)
        except KafkaException as error:
            if not _leader_moving(error) or time.monotonic() > deadline:
                raise BrokerError(f"read end offsets of {topic}", error.args[0]) from error
            time.sleep(0.2)


def _watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        error = metadata.error if metadata is not None else None
        raise KafkaException(error or KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.partitions
    }


def _leader_moving(error: KafkaException) -> bool:
    """A partition between leaders (a topic just created): asking again soon will do."""
    return error.args[0].code() in LEADER_MOVING


class OffsetReader:
    """Reads end offsets and a group's committed offsets with one long-lived consumer.

    It never joins the group (no subscribe), so `close()` needs no broker round trip.
    """

    def __init__(self, bootstrap: str, group: str):
        self.group = group
        self._consumer: Consumer | None = _consumer(bootstrap, group)

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise ScalelabError(f"the offset reader of {self.group} is closed")
        return self._consumer

    def end_offsets(self, topic: str) -> dict[int, int]:
        return _end_offsets(self.consumer, topic)

    def committed(self, topic: str, partitions: list[int]) -> dict[int, int]:
        with broker_call(f"read committed offsets of {self.group}"):
            result = self.consumer.committed(
                [TopicPartition(topic, p) for p in partitions], timeout=10
            )
        return {tp.partition: max(tp.offset, 0) for tp in result}

    def lag(self, topic: str, ends: dict[int, int] | None = None) -> int:
        """Messages not yet committed by the group; `ends` saves a second watermark pass."""
        ends = self.end_offsets(topic) if ends is None else ends
        committed = self.committed(topic, list(ends))
        return sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())

    def close(self) -> bool:
        """Close the consumer now (idempotent); a later call raises instead of reconnecting."""
        consumer, self._consumer = self._consumer, None
        return True if consumer is None else close_consumer(consumer)


def close_consumer(consumer: Consumer) -> bool:
    """Close and free a consumer within CLOSE_TIMEOUT_S (see `release`)."""
    holder = [consumer]
    del consumer

    def destroy() -> None:
        holder[0].close()
        holder.clear()

    return release(destroy)


def read_keys(
    bootstrap: str,
    topic: str,
    start: Mapping[int, int] | None = None,
    timeout: float = 60,
) -> list[str]:
    """Every message key of a topic from `start` (default: the beginning) to its current end.

    Raises BrokerError if the end is not reached within `timeout`: an accounting
    built on a partial read would report messages as lost.
    """
    consumer = _consumer(bootstrap, "scalelab-audit")
    try:
        ends = _end_offsets(consumer, topic)
        begin = {p: (start or {}).get(p, 0) for p in ends}
        remaining = {p for p, end in ends.items() if end > begin[p]}
        consumer.assign([TopicPartition(topic, p, begin[p]) for p in remaining])
        keys: list[str] = []
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            with broker_call(f"read {topic}"):
                batch = consumer.consume(READ_BATCH, 0.5)
            for message in batch:
                _take(message, ends, remaining, keys)
        if remaining:
            raise BrokerError(f"read {topic} to its end", f"not done after {timeout:g} s")
        return keys
    finally:
        close_consumer(consumer)


def _take(message: Message, ends: dict[int, int], remaining: set[int], keys: list[str]) -> None:
    if message.error() is not None:
        return
    partition, offset = int(message.partition() or 0), int(message.offset() or 0)
    if partition not in remaining or offset >= ends[partition]:
        return  # written after the end we aimed at
    keys.append((message.key() or b"").decode(errors="replace"))
    if offset + 1 >= ends[partition]:
        remaining.discard(partition)
