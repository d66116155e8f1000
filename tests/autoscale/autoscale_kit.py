"""A harness for the autoscaler's tests: real worker processes started through the local
platform as the experiment starts them, a feeder with a load step, the output read back."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from onnx import TensorProto, helper

from scalelab.chaos.proxy import TcpProxy
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.local import kafka
from scalelab.platform.ports import choose_port
from scalelab.platform.process import ManagedProcess
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec


def slow_model(path: Path, layers: int = 16) -> Path:
    """A batch-1 detector [1,3,128,128] → [1,6,16] with enough convolutions (16 channels,
    3×3, full resolution) that one worker cannot keep up with the tests' load step of
    150 frames/s, so a policy has something to react to: 16 layers took 13.5 ms a frame
    here beside another test suite (3 layers took 2 ms, and a quiet machine kept up)."""
    rng = np.random.default_rng(0)
    inits, nodes, prev, chans = [], [], "images", 3
    for i in range(layers):
        w = rng.normal(0, 0.05, (16, chans, 3, 3)).astype(np.float32)
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, w.shape, w.flatten()))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        prev, chans = f"c{i}", 16
    head = np.full((6, 16, 32, 32), 1e-5, np.float32)
    inits.append(helper.make_tensor("head", TensorProto.FLOAT, head.shape, head.flatten()))
    inits.append(helper.make_tensor("s", TensorProto.INT64, [3], [1, 6, 16]))
    nodes.append(helper.make_node("Conv", [prev, "head"], ["h"], strides=[32, 32]))
    nodes.append(helper.make_node("Reshape", ["h", "s"], ["output0"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 128, 128])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 16])],
        inits,
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


@dataclass
class Topics:
    input: str
    output: str
    dead_letter: str


def create_topics(bootstrap: str, partitions: int) -> Topics:
    name = f"as-{uuid.uuid4().hex[:8]}"
    topics = Topics(name, name + "-out", name + "-dlq")
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    new = [
        NewTopic(topics.input, num_partitions=partitions, replication_factor=1),
        NewTopic(topics.output, 1, 1),
        NewTopic(topics.dead_letter, 1, 1),
    ]
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result()
    return topics


class Feeder(threading.Thread):
    """Sends frames at `rate`/s (changeable: a load step) until stopped; counts what it sent."""

    def __init__(self, bootstrap: str, topic: str, run_id: str, rate: float):
        super().__init__(daemon=True)
        self.topic, self.run_id, self.rate = topic, run_id, rate
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.sent = 0
        self.unflushed = -1  # not stopped yet
        self.halt = threading.Event()
        self.frame = jpeg(0)

    def run(self) -> None:
        next_send = time.monotonic()
        while not self.halt.is_set():
            key = f"{self.run_id}:{self.sent}"
            headers: list[tuple[str, str | bytes | None]] = [
                ("run_id", self.run_id.encode()),
                ("seq", str(self.sent).encode()),
                ("intended_ns", str(time.time_ns()).encode()),
            ]
            self.producer.produce(self.topic, key=key.encode(), value=self.frame, headers=headers)
            self.producer.poll(0)
            self.sent += 1
            next_send += 1 / self.rate
            self.halt.wait(max(0.0, next_send - time.monotonic()))
        self.unflushed = self.producer.flush(120)  # the test asserts 0

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def keys(self) -> set[str]:
        return {f"{self.run_id}:{seq}" for seq in range(self.sent)}


def output_keys(bootstrap: str, topic: str) -> list[str]:
    """Every key in a single-partition topic, from the beginning up to its end now."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"audit-{uuid.uuid4().hex}", "log_level": 0}
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        keys: list[str] = []
        deadline = time.monotonic() + 60
        while len(keys) < end and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                keys.append((message.key() or b"").decode())
        return keys
    finally:
        consumer.close()


@dataclass
class WorkerLauncher:
    """Builds the workers' launch exactly as the experiment's `_launch` does."""

    spec_file: Path
    bootstrap: str
    run_id: str
    run_dir: Path
    model: Path

    def __call__(self, name: str) -> ComponentLaunch:
        args = ["--spec", str(self.spec_file), "--bootstrap", self.bootstrap]
        args += ["--run-id", self.run_id, "--run-dir", str(self.run_dir)]
        args += ["--name", name, "--model", str(self.model)]
        return ComponentLaunch(name, "worker", "scalelab.components.worker", args)

    @property
    def group(self) -> str:
        return f"scalelab-workers-{self.run_id}"


def worker_launcher(bootstrap: str, topics: Topics, tmp_path: Path) -> WorkerLauncher:
    run_id = f"as{uuid.uuid4().hex[:6]}"
    model = slow_model(tmp_path / "slow.onnx")
    spec = ExperimentSpec.model_validate(
        {
            "name": "as",
            "broker": {
                "input_topic": topics.input,
                "output_topic": topics.output,
                "dead_letter_topic": topics.dead_letter,
            },
            "workload": {"model": str(model), "threads": 1, "max_batch_wait": 0.05},
            "load": {"profile": "constant", "rate": 1},
        }
    )
    spec_file = tmp_path / f"{run_id}.yaml"
    spec_file.write_text(dump_spec(spec))
    return WorkerLauncher(spec_file, bootstrap, run_id, tmp_path, model)


def output_records(bootstrap: str, topic: str) -> list[dict[str, object]]:
    """Every output record (JSON) of a single-partition topic, up to its end now."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"audit-{uuid.uuid4().hex}", "log_level": 0}
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        records: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while len(records) < end and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(json.loads(message.value() or b"{}"))
        return records
    finally:
        consumer.close()


def broker_behind_proxy(work: Path, run_id: str) -> tuple[ManagedProcess, TcpProxy, str]:
    """A broker of its own whose advertised listener is a TCP proxy: every client (the
    feeder, the worker) reaches it through the proxy, as a network fault needs."""
    taken: set[int] = set()
    ports = kafka.BrokerPorts(
        client=choose_port("b", 0, taken),
        controller=choose_port("c", 0, taken),
        metrics=choose_port("m", 0, taken),
    )
    proxy = TcpProxy(("127.0.0.1", ports.client)).start()
    spec = kafka.broker_process(ports, work / "cfg", work / "data", 512, 3600, work / "broker.log")
    config = work / "cfg" / "server.properties"
    text = config.read_text().replace(
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.client}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy.port}",
    )
    config.write_text(text)
    proc = ManagedProcess(spec, work / "pids", run_id, detached=False)
    proc.start()
    return proc, proxy, f"127.0.0.1:{proxy.port}"
