"""The run's accounting, start offsets, group events and client lifetime against the real broker.

Each test uses its own topics and run id, so earlier runs' messages on a shared
broker are exactly the situation under test, not an accident.
"""

from __future__ import annotations

import gc
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console

from scalelab.platform.base import Endpoints, Platform
from scalelab.platform.process import wait_until
from scalelab.run import experiment as experiment_module
from scalelab.run import kafka_ops
from scalelab.run.accounting import message_id
from scalelab.run.experiment import Experiment
from scalelab.run.record import RunRecord
from scalelab.run.session import RunSession
from scalelab.spec.models import ExperimentSpec

pytestmark = pytest.mark.integration
MakeExperiment = Callable[[ExperimentSpec], Experiment]


@dataclass
class Session:
    """What Experiment reads of a RunSession, without a platform of its own: the broker is
    the session's real one; these tests never start components."""

    spec: ExperimentSpec
    record: RunRecord
    id: str
    dir: Path
    platform: Platform | None = None

    def save(self) -> None:
        self.record.write(self.dir)


def make_spec(partitions: int) -> ExperimentSpec:
    name = f"acct-{uuid.uuid4().hex[:8]}"
    broker = {
        "partitions": partitions,
        "input_topic": f"{name}.in",
        "output_topic": f"{name}.out",
        "dead_letter_topic": f"{name}.dlq",
    }
    return ExperimentSpec.model_validate(
        {"name": "acct", "load": {"profile": "constant", "rate": 1}, "broker": broker}
    )


@pytest.fixture
def experiment_for(endpoints: Endpoints, tmp_path: Path) -> Iterator[MakeExperiment]:
    made: list[Experiment] = []

    def make(spec: ExperimentSpec) -> Experiment:
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        session = Session(spec, RunRecord(id=run_id, name=spec.name), run_id, tmp_path)
        console = Console(file=io.StringIO())
        experiment = Experiment(cast(RunSession, session), endpoints, "model.onnx", console)
        made.append(experiment)
        return experiment

    yield make
    for experiment in made:
        experiment.close()


def produce(bootstrap: str, topic: str, messages: list[tuple[int, str]]) -> None:
    """Write (partition, key) messages and wait until the broker has them."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, key in messages:
        producer.produce(topic, key=key.encode(), value=b"frame", partition=partition)
    assert producer.flush(30) == 0


def write_qos(run_dir: Path, ids: list[str], at: list[tuple[int, int]] | None = None) -> None:
    """qos.parquet as the tracker writes it: id, and the (partition, offset) it came from."""
    at = at or [(-1, -1)] * len(ids)
    columns = {
        "id": pa.array(ids, pa.string()),
        "partition": pa.array([p for p, _ in at], pa.int32()),
        "offset": pa.array([o for _, o in at], pa.int64()),
    }
    pq.write_table(pa.table(columns), run_dir / "qos.parquet")


def commit(experiment: Experiment, offsets: dict[int, int]) -> None:
    """What the workers' group committed (no member is active in these tests)."""
    topic = experiment.spec.broker.input_topic
    consumer = Consumer(
        {"bootstrap.servers": experiment.endpoints.bootstrap, "group.id": experiment.group}
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def test_an_earlier_runs_messages_do_not_count(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    spec = make_spec(partitions=1)
    broker = spec.broker
    earlier, this = experiment_for(spec), experiment_for(spec)
    kafka_ops.create_topics(this.admin, broker, 1)
    old = [message_id(earlier.session.id, s) for s in range(5)]
    produce(endpoints.bootstrap, broker.input_topic, [(0, key) for key in old])
    produce(endpoints.bootstrap, broker.dead_letter_topic, [(0, old[4])])

    this._commit_start_offsets()
    new = [message_id(this.session.id, s) for s in range(3)]
    produce(endpoints.bootstrap, broker.input_topic, [(0, key) for key in new])
    produce(endpoints.bootstrap, broker.dead_letter_topic, [(0, new[2])])
    commit(this, {0: 8})
    write_qos(this.session.dir, old[:2] + new[:2])  # the earlier run's records in the output too

    accounting = this._account()
    assert this.record.results["start_offsets"][broker.input_topic] == {"0": 5}
    assert (accounting.produced, accounting.processed, accounting.dead_lettered) == (3, 2, 1)
    assert accounting.ok and accounting.still_queued == 0
    assert this.dead_letter_ids == [new[2]]
    assert this.offsets.committed(broker.input_topic, [0]) == {0: 8}


def test_the_run_starts_its_groups_at_the_topics_ends(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    spec = make_spec(partitions=2)
    experiment = experiment_for(spec)
    broker = spec.broker
    kafka_ops.create_topics(experiment.admin, broker, 2)
    produce(endpoints.bootstrap, broker.input_topic, [(0, "a"), (1, "b"), (1, "c")])
    produce(endpoints.bootstrap, broker.output_topic, [(1, "x")])
    experiment._commit_start_offsets()
    tracker = kafka_ops.OffsetReader(
        endpoints.bootstrap, f"scalelab-tracker-{experiment.session.id}"
    )
    try:
        assert tracker.committed(broker.output_topic, [0, 1]) == {0: 0, 1: 1}
    finally:
        tracker.close()
    assert experiment.offsets.committed(broker.input_topic, [0, 1]) == {0: 1, 1: 2}
    assert experiment.offsets.lag(broker.input_topic) == 0


@pytest.mark.parametrize("tail_read_limit", [experiment_module.TAIL_READ_LIMIT, 0])
def test_processed_but_uncommitted_does_not_hide_a_loss(
    experiment_for: MakeExperiment,
    endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
    tail_read_limit: int,
) -> None:
    """Partition 0: message 1 processed, its offset not yet committed. Partition 1: message 2
    committed past but never processed (lost). The group lag (1) used as "still queued"
    made produced 3 = processed 2 + queued 1 and hid the loss. Checked with the tail read
    back by key and, for a tail too large to read, placed by offset."""
    monkeypatch.setattr(experiment_module, "TAIL_READ_LIMIT", tail_read_limit)
    spec = make_spec(partitions=2)
    experiment = experiment_for(spec)
    broker = spec.broker
    kafka_ops.create_topics(experiment.admin, broker, 2)
    experiment._commit_start_offsets()
    ids = [message_id(experiment.session.id, s) for s in range(3)]
    produce(endpoints.bootstrap, broker.input_topic, [(0, ids[0]), (0, ids[1]), (1, ids[2])])
    commit(experiment, {0: 1, 1: 1})
    write_qos(experiment.session.dir, ids[:2], [(0, 0), (0, 1)])

    accounting = experiment._account()
    assert accounting.produced == 3 and accounting.processed == 2
    assert accounting.still_queued == 0
    assert not accounting.ok and accounting.lost == 1


def test_a_message_nobody_processed_yet_is_still_queued(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    spec = make_spec(partitions=2)
    experiment = experiment_for(spec)
    broker = spec.broker
    kafka_ops.create_topics(experiment.admin, broker, 2)
    experiment._commit_start_offsets()
    ids = [message_id(experiment.session.id, s) for s in range(4)]
    produce(
        endpoints.bootstrap,
        broker.input_topic,
        [(0, i) for i in ids[:2]] + [(1, i) for i in ids[2:]],
    )
    commit(experiment, {0: 1})
    write_qos(experiment.session.dir, ids[:1] + ids[2:3])

    accounting = experiment._account()
    assert (accounting.processed, accounting.still_queued, accounting.lost) == (2, 2, 0)


def test_an_existing_topic_with_other_partitions_is_refused(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    spec = make_spec(partitions=2)
    broker = spec.broker
    admin = AdminClient({"bootstrap.servers": endpoints.bootstrap})
    admin.create_topics([NewTopic(broker.input_topic, num_partitions=3)])[
        broker.input_topic
    ].result(30)
    del admin
    experiment = experiment_for(spec)
    with pytest.raises(kafka_ops.TopicMismatchError) as refused:
        kafka_ops.create_topics(experiment.admin, broker, 2)
    assert (refused.value.topic, refused.value.existing, refused.value.wanted) == (
        broker.input_topic,
        3,
        2,
    )
    assert "broker.partitions=3" in str(refused.value)


def live_admin_clients() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, AdminClient))


def test_a_failed_run_frees_its_admin_client_before_teardown(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    """The error (and its traceback, whose frames held the client) outlives execute(), as it
    does while the session tears the broker down: the native client must be gone already."""
    spec = make_spec(partitions=2)
    creator = AdminClient({"bootstrap.servers": endpoints.bootstrap})
    topic = spec.broker.input_topic
    creator.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(30)
    del creator
    before = live_admin_clients()
    experiment = experiment_for(spec)
    assert live_admin_clients() == before + 1
    with pytest.raises(kafka_ops.TopicMismatchError) as failed:
        experiment.execute()
    assert failed.value.__traceback__ is not None
    assert live_admin_clients() == before
    assert experiment.offsets._consumer is None  # closed, not waiting for the collector
    assert [p.name for p in experiment.record.phases] == ["deploy"]


def test_members_leaving_and_joining_are_recorded(
    experiment_for: MakeExperiment, endpoints: Endpoints
) -> None:
    spec = make_spec(partitions=2)
    experiment = experiment_for(spec)
    kafka_ops.create_topics(experiment.admin, spec.broker, 2)
    consumers = {name: member(endpoints, experiment, name) for name in ("worker-0", "worker-1")}
    try:
        settle(experiment, consumers, 2)
        experiment.members.changes()  # baseline, as when the group is ready
        consumers.pop("worker-1").close()
        settle(experiment, consumers, 1)
        experiment._record_group_changes()
        consumers["worker-1"] = member(endpoints, experiment, "worker-1")
        settle(experiment, consumers, 2)
        experiment._record_group_changes()
    finally:
        for consumer in consumers.values():
            consumer.close()
    kinds = [(e["kind"], e.get("component")) for e in experiment.record.events]
    assert kinds == [("group-member-left", "worker-1"), ("group-member-joined", "worker-1")]


def member(endpoints: Endpoints, experiment: Experiment, name: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints.bootstrap,
            "group.id": experiment.group,
            "client.id": name,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([experiment.spec.broker.input_topic])
    return consumer


def settle(experiment: Experiment, consumers: dict[str, Consumer], members: int) -> None:
    """Poll the members until the group has `members` members holding both partitions."""

    def settled() -> bool:
        for consumer in consumers.values():
            consumer.poll(0.2)
        return kafka_ops.group_members(experiment.admin, experiment.group) == (members, 2)

    assert wait_until(settled, 60, interval=0.1)
