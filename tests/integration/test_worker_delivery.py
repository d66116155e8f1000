"""The worker process against the real broker: refused results, fencing, a broker that dies.

Each test runs `python -m scalelab.components.worker` as a subprocess with a tiny
ONNX model, sends it real signals and reads the group's committed offsets and
the output topic back from the broker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import onnx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from onnx import TensorProto, helper
from prometheus_client.parser import text_string_to_metric_families

from scalelab.platform.base import Endpoints
from scalelab.platform.local.platform import LocalPlatform
from scalelab.platform.process import wait_until
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_S = 10  # the worker's session.timeout.ms


# --- helpers -----------------------------------------------------------------------------


def tiny_model(path: Path) -> Path:
    """A batch-1 detector from a [1, 3, 128, 128] image to [1, 6, 16] (two classes)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [6, 3, 32, 32], [1e-4] * (6 * 3 * 32 * 32))
    shape = helper.make_tensor("s", TensorProto.INT64, [3], [1, 6, 16])
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["c"], strides=[32, 32]),
            helper.make_node("Reshape", ["c", "s"], ["output0"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 128, 128])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 16])],
        [weight, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Topics:
    input: str
    output: str
    dead_letter: str


def create_topics(
    bootstrap: str, partitions: int = 1, output_config: dict[str, str] | None = None
) -> Topics:
    name = f"wd-{uuid.uuid4().hex[:8]}"
    topics = Topics(name, name + "-out", name + "-dlq")
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    new = [
        NewTopic(topics.input, num_partitions=partitions, replication_factor=1),
        NewTopic(topics.output, 1, 1, config=output_config or {}),
        NewTopic(topics.dead_letter, 1, 1),
    ]
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result()
    return topics


def send(
    bootstrap: str, topic: str, run_id: str, seqs: range, big: frozenset[int] = frozenset()
) -> None:
    """Frames `seqs` to `topic` (key `run_id:seq`); the keys of `big` are padded to 5000 bytes,
    so their results exceed a small output topic's `max.message.bytes`."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for seq in seqs:
        key = f"{run_id}:{seq}" + ("x" * 5000 if seq in big else "")
        headers: list[tuple[str, str | bytes | None]] = [
            ("run_id", run_id.encode()),
            ("seq", str(seq).encode()),
        ]
        producer.produce(topic, key=key.encode(), value=jpeg(seq), headers=headers)
    assert producer.flush(30) == 0


def output_keys(bootstrap: str, topic: str) -> list[str]:
    """Every key in a single-partition topic, read from the beginning up to its end now."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"audit-{uuid.uuid4().hex}", "log_level": 0}
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        keys: list[str] = []
        deadline = time.monotonic() + 30
        while len(keys) < end and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                keys.append((message.key() or b"").decode())
        return keys
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The group's committed offset (-1001 when it never committed), read without joining."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        return int(consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset)
    finally:
        consumer.close()


@dataclass
class WorkerProcess:
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    group: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        raise KeyError(name)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGCONT)
            self.popen.kill()
            self.popen.wait()


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """Starts worker subprocesses (like the local platform does) and kills what is left."""
    started: list[WorkerProcess] = []
    model = tiny_model(tmp_path / "tiny.onnx")

    def start(bootstrap: str, topics: Topics, **workload: object) -> WorkerProcess:
        run_id = f"wd{uuid.uuid4().hex[:6]}"
        spec = ExperimentSpec.model_validate(
            {
                "name": "wd",
                "broker": {
                    "input_topic": topics.input,
                    "output_topic": topics.output,
                    "dead_letter_topic": topics.dead_letter,
                },
                "workload": {"model": str(model), "threads": 1, **workload},
                "load": {"profile": "constant", "rate": 1},
            }
        )
        spec_file = tmp_path / f"{run_id}.yaml"
        spec_file.write_text(dump_spec(spec))
        port = free_port()
        log = tmp_path / f"{run_id}.log"
        argv = [
            sys.executable,
            "-m",
            "scalelab.components.worker",
            *("--spec", str(spec_file), "--bootstrap", bootstrap, "--run-id", run_id),
            *("--run-dir", str(tmp_path), "--metrics-port", str(port)),
            *("--name", "worker-0", "--model", str(model)),
        ]
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        worker = WorkerProcess(popen, log, port, f"scalelab-workers-{run_id}")
        started.append(worker)
        assert wait_until(lambda: _ready(worker), 60), worker.log_text()
        return worker

    yield start
    for worker in started:
        worker.stop()


def _ready(worker: WorkerProcess) -> bool:
    if worker.popen.poll() is not None:
        return True  # dead: let the test's own assertion show the log
    try:
        return worker.metric("scalelab_worker_ready") == 1
    except (httpx.HTTPError, KeyError):
        return False


# --- refused results (issue 8.4) ---------------------------------------------------------


def test_a_refused_result_is_never_committed_past(
    endpoints: Endpoints, start_worker: StartWorker
) -> None:
    """Batches [0,1] [2,3] [4…]: the results of [2,3] exceed the output topic's
    `max.message.bytes`. The worker must stop with exit 1 and a log line naming the
    topic, and its group's committed offset must stay at 2 — in the loop and when
    close() revokes its partitions (the old code processed the held frame 4 there and
    committed offset 5, past the undelivered results)."""
    bootstrap = endpoints.bootstrap
    topics = create_topics(bootstrap, output_config={"max.message.bytes": "4096"})
    worker = start_worker(bootstrap, topics, batch_size=2, max_batch_wait=60)
    send(bootstrap, topics.input, "r", range(2))
    assert wait_until(lambda: len(output_keys(bootstrap, topics.output)) == 2, 60)
    send(bootstrap, topics.input, "r", range(2, 5), big=frozenset({2}))

    assert wait_until(lambda: worker.popen.poll() is not None, 90), worker.log_text()
    assert worker.popen.returncode == 1, worker.log_text()
    log = worker.log_text()
    assert f"topic {topics.output}" in log and "too large" in log.lower(), log
    assert committed(bootstrap, worker.group, topics.input) == 2
    delivered = set(output_keys(bootstrap, topics.output))
    assert {"r:0", "r:1"} <= delivered and not any(k.startswith("r:2") for k in delivered)
    assert "r:4" not in delivered  # a refusal is noticed before the next batch is run


# --- batch-size metric (issue 8.8) -------------------------------------------------------


def test_batch_size_is_observed_once_per_inference_call(
    endpoints: Endpoints,
    start_worker: StartWorker,
) -> None:
    """20 frames in batches of 4: five observations summing to 20 frames (the old code
    observed the batch size once per frame: twenty observations summing to 80)."""
    topics = create_topics(endpoints.bootstrap)
    send(endpoints.bootstrap, topics.input, "b", range(20))
    worker = start_worker(endpoints.bootstrap, topics, batch_size=4, max_batch_wait=30)
    assert wait_until(lambda: worker.metric("scalelab_worker_processed_total") == 20, 60)
    assert worker.metric("scalelab_worker_batch_size_count") == 5
    assert worker.metric("scalelab_worker_batch_size_sum") == 20


# --- a paused worker (issue 9.2) ---------------------------------------------------------


class Feeder(threading.Thread):
    """Sends frames at ~`rate`/s until stopped; remembers every key it sent."""

    def __init__(self, bootstrap: str, topic: str, rate: float):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.rate = bootstrap, topic, rate
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            send(self.bootstrap, self.topic, "p", range(self.sent, self.sent + 1))
            self.sent += 1
            self.halt.wait(1 / self.rate)

    def keys(self) -> set[str]:
        return {f"p:{seq}" for seq in range(self.sent)}


def test_a_worker_paused_past_its_session_timeout_rejoins_and_goes_on(
    endpoints: Endpoints,
    start_worker: StartWorker,
) -> None:
    """SIGSTOP for longer than session.timeout.ms, SIGCONT: the group has fenced the
    worker; it must rejoin, not crash on its commit (UNKNOWN_MEMBER_ID), and every frame
    sent before, during and after the pause must end up processed (duplicates allowed)."""
    bootstrap = endpoints.bootstrap
    topics = create_topics(bootstrap, partitions=2)
    # A partial batch is almost always held when the pause hits: the revoke path has work.
    worker = start_worker(bootstrap, topics, batch_size=8, max_batch_wait=5)
    feeder = Feeder(bootstrap, topics.input, rate=3)
    feeder.start()
    try:
        assert wait_until(lambda: len(output_keys(bootstrap, topics.output)) >= 8, 60)
        os.kill(worker.popen.pid, signal.SIGSTOP)
        time.sleep(SESSION_TIMEOUT_S + 5)
        os.kill(worker.popen.pid, signal.SIGCONT)
        after = feeder.sent + 15
        assert wait_until(lambda: feeder.sent >= after or worker.popen.poll() is not None, 60)
    finally:
        feeder.halt.set()
        feeder.join()
    wanted = feeder.keys()
    assert wait_until(
        lambda: (
            worker.popen.poll() is not None or wanted <= set(output_keys(bootstrap, topics.output))
        ),
        120,
        interval=2,
    )
    assert worker.popen.poll() is None, worker.log_text()
    assert wanted - set(output_keys(bootstrap, topics.output)) == set()
    assert "lost" in worker.log_text()


# --- a broker that goes away (issue 9.3) -------------------------------------------------


@pytest.fixture(scope="module")
def doomed_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """A broker of our own, to kill (the session's shared broker must live on)."""
    spec = ExperimentSpec.model_validate(
        {
            "name": "doomed",
            "load": {"profile": "constant", "rate": 1},
            "monitoring": {"node_exporter": False},
        }
    )
    run_dir = tmp_path_factory.mktemp("doomed-run")
    platform = LocalPlatform(spec, "doomed", run_dir, tmp_path_factory.mktemp("doomed"), False)
    try:
        platform.start_infrastructure()
        yield platform
    finally:
        platform.teardown()


def test_sigterm_with_the_broker_gone_exits_in_bounded_time(
    doomed_broker: LocalPlatform,
    start_worker: StartWorker,
) -> None:
    """Frames 0–7 make a batch and are delivered; 8–11 wait in the batcher. The broker is
    killed, then the worker gets SIGTERM: it processes the held frames, whose results can
    never be delivered. The old worker waited in `producer.flush()` with no timeout
    (librdkafka retries for `message.timeout.ms`, 300 s); it must exit within 30 s,
    saying how many results stayed undelivered."""
    assert doomed_broker.endpoints is not None
    bootstrap = doomed_broker.endpoints.bootstrap
    topics = create_topics(bootstrap)
    send(bootstrap, topics.input, "d", range(12))
    worker = start_worker(bootstrap, topics, batch_size=8, max_batch_wait=60)
    assert wait_until(lambda: len(output_keys(bootstrap, topics.output)) == 8, 60)
    time.sleep(1)  # let the worker take frames 8–11 from its fetch queue into the batcher
    doomed_broker.kill_component("broker")
    worker.popen.send_signal(signal.SIGTERM)
    try:
        worker.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not exit within 30 s of SIGTERM:\n" + worker.log_text())
    assert "4 results still undelivered" in worker.log_text(), worker.log_text()
