"""The producer component as a run starts it: a process, a spec file, the real broker."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from scalelab.components import common
from scalelab.platform.base import Endpoints
from scalelab.platform.ports import free_port
from scalelab.run import kafka_ops
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import BrokerSpec, ExperimentSpec

pytestmark = pytest.mark.integration

SMALL_FRAMES = {"kind": "synthetic", "width": 32, "height": 32, "frames": 4}
MEMORY_CAP = 8 * 1024**3
"""Address-space cap of the producer process: a schedule held in memory fails fast, not the host."""


class ProducerProcess:
    """`python -m scalelab.components.producer` with a resolved spec, as a run starts it."""

    def __init__(self, run_dir: Path, bootstrap: str, load: dict[str, Any], topic: str):
        spec = ExperimentSpec.model_validate(
            {"name": "ptest", "load": load, "source": SMALL_FRAMES, "broker": _broker(topic)}
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "spec.yaml").write_text(dump_spec(spec))
        self.run_dir, self.run_id, self.port = run_dir, f"run-{uuid.uuid4().hex[:8]}", free_port()
        args = ["--spec", str(run_dir / "spec.yaml"), "--bootstrap", bootstrap]
        args += ["--run-id", self.run_id, "--run-dir", str(run_dir)]
        self.log = (run_dir / "producer.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scalelab.components.producer", *args]
            + ["--metrics-port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP)),
        )

    def wait_until_sending(self, timeout: float = 120) -> None:
        """Until its metrics show a message handed to Kafka (it publishes them once a second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"producer exited early:\n{self.output()}"
            if self._sent() > 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"producer sent nothing in {timeout:g} s:\n{self.output()}")

    def _sent(self) -> float:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("scalelab_producer_messages_total "):
                return float(line.split()[1])
        return 0.0

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def report(self) -> dict[str, Any]:
        return dict(json.loads((self.run_dir / "producer.json").read_text()))

    def output(self) -> str:
        return (self.run_dir / "producer.log").read_text()[-3000:]


def _broker(topic: str) -> dict[str, str]:
    return {
        "input_topic": topic,
        "output_topic": f"{topic}-out",
        "dead_letter_topic": f"{topic}-dl",
    }


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    with kafka_ops.admin(bootstrap) as client:
        kafka_ops.create_topics(client, BrokerSpec(**_broker(topic)), partitions)


def _read_keys_and_seqs(bootstrap: str, topic: str, expected: int) -> dict[str, int]:
    """Every message's key and its `seq` header, read from the start of the topic."""
    return {
        key: int(headers[common.H_SEQ])
        for key, (headers, _) in _read(bootstrap, topic, expected).items()
    }


def _read(bootstrap: str, topic: str, expected: int) -> dict[str, tuple[dict[str, str], int]]:
    """Every message's key: its headers and its value's length, read from the topic's start."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    found: dict[str, tuple[dict[str, str], int]] = {}
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + 60
        while len(found) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 1.0):
                if message.error() is None:
                    headers = common.header_dict(message.headers())
                    found[(message.key() or b"").decode()] = (headers, len(message.value() or b""))
    finally:
        consumer.close()
    return found


def test_the_producer_reports_the_load_phase_and_keys_messages_by_run(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    topic = f"producer-{uuid.uuid4().hex[:8]}"
    _create_topic(endpoints.bootstrap, topic, 2)
    load = {"profile": "constant", "rate": 50, "duration": 3, "warmup": 1}
    producer = ProducerProcess(tmp_path / "run", endpoints.bootstrap, load, topic)
    assert producer.wait(120) == 0, producer.output()
    report = producer.report()
    assert report["scheduled"] == report["sent"] == report["acked"] == 150
    assert (report["load_seq_start"], report["load_seq_end"], report["load_sent"]) == (50, 150, 100)
    assert report["flush_undelivered"] == 0 and report["load_seq_counted"] is True
    assert report["target_rate"] == pytest.approx(50.0)
    assert report["lag_p99_s"] is not None and report["lag_max_s"] >= report["lag_p99_s"]
    found = _read(endpoints.bootstrap, topic, 150)
    keys = {key: int(headers[common.H_SEQ]) for key, (headers, _) in found.items()}
    assert keys == {f"{producer.run_id}:{seq}": seq for seq in range(150)}
    # only failed deliveries are reported to the client: acked and bytes are still exact
    assert report["bytes"] == sum(size for _, size in found.values())
    first_load = found[f"{producer.run_id}:50"][0]
    assert report["load_first_send_ns"] == int(first_load[common.H_SENT])
    for headers, _ in found.values():
        assert int(headers[common.H_SENT]) >= int(headers[common.H_INTENDED])
    assert report["cpu_s"] > 0 and 0 < report["load_cpu_s"] <= report["cpu_s"]


def test_a_schedule_too_big_for_memory_starts_sending_at_once(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    """1000 msg/s for the longest load a spec allows: 6 x 10^8 messages, none held in memory."""
    topic = f"producer-huge-{uuid.uuid4().hex[:8]}"
    _create_topic(endpoints.bootstrap, topic, 1)
    load = {"profile": "constant", "rate": 1000, "duration": "7d", "warmup": "1d"}
    producer = ProducerProcess(tmp_path / "run", endpoints.bootstrap, load, topic)
    producer.wait_until_sending()
    producer.proc.send_signal(signal.SIGTERM)
    assert producer.wait(60) == 0, producer.output()
    report = producer.report()
    assert report["sent"] > 0 and report["acked"] == report["sent"]
    assert report["flush_undelivered"] == 0 and report["load_sent"] == 0
    assert report["load_seq_counted"] is False
    assert (report["load_seq_start"], report["load_seq_end"]) == (86_400_000, 604_800_000)
    assert report["scheduled"] == 604_800_000
    assert report["target_rate"] == pytest.approx(1000.0)


def test_a_producer_whose_broker_is_gone_stops_soon_after_sigterm_and_says_so(
    tmp_path: Path,
) -> None:
    """No broker answers: the final flush is cut short, the loss reported, the exit non-zero."""
    gone = f"127.0.0.1:{free_port()}"
    load = {"profile": "constant", "rate": 2000, "duration": 600}
    producer = ProducerProcess(tmp_path / "run", gone, load, "nowhere")
    producer.wait_until_sending()
    producer.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = producer.wait(45)  # flush alone used to wait 60 s, and exit 0
    assert code == 1, producer.output()
    report = producer.report()
    assert report["acked"] == 0 and report["sent"] > 0
    assert report["flush_undelivered"] == report["sent"]
    assert "not delivered" in producer.output()
    assert time.monotonic() - signalled < 45
