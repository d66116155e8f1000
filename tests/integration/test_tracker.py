"""The QoS tracker process against the real broker: foreign records, a drain that gives up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from scalelab.platform.base import Endpoints
from scalelab.platform.process import wait_until
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec

pytestmark = pytest.mark.integration


def output_record(run_id: str, seq: int) -> dict[str, object]:
    """An output-topic record as a worker writes it (ARCHITECTURE.md)."""
    return {
        "id": f"{run_id}:{seq}",
        "run_id": run_id,
        "seq": seq,
        "source": "s",
        "worker": "worker-0",
        "model": "m",
        "batch_size": 1,
        "partition": 0,
        "offset": seq,
        "intended_ns": 1_000_000_000,
        "sent_ns": 1_000_000_000,
        "consume_ns": 1_100_000_000,
        "done_ns": 1_200_000_000,
        "queue_s": 0.1,
        "decode_s": 0.001,
        "preprocess_s": 0.001,
        "inference_s": 0.05,
        "postprocess_s": 0.001,
        "detections": 0,
    }


def publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def records(run_id: str, seqs: range) -> list[bytes]:
    return [json.dumps(output_record(run_id, seq)).encode() for seq in seqs]


@dataclass
class Tracker:
    popen: subprocess.Popen[bytes]
    run_dir: Path
    log: Path
    metrics_port: int

    def outcome(self) -> dict[str, object]:
        return dict(json.loads((self.run_dir / "tracker.json").read_text()))

    def ids(self) -> list[str]:
        return [str(i) for i in pq.read_table(self.run_dir / "qos.parquet")["id"].to_pylist()]

    def records_seen(self) -> float:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0.0
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "scalelab_tracker_records_total"
        )

    def terminate(self, timeout: float = 60) -> int:
        self.popen.send_signal(signal.SIGTERM)
        os.kill(self.popen.pid, signal.SIGCONT)
        return self.popen.wait(timeout=timeout)


@pytest.fixture
def tracker(
    tmp_path: Path, endpoints: Endpoints, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Tracker]]:
    """A tracker process for run `mine` on a fresh output topic (extra arguments by
    indirect parametrisation)."""
    extra: list[str] = list(getattr(request, "param", []))
    topic = f"tr-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": endpoints.bootstrap, "log_level": 0})
    for future in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30).values():
        future.result()
    spec = ExperimentSpec.model_validate(
        {
            "name": "tr",
            "broker": {"output_topic": topic},
            "load": {"profile": "constant", "rate": 1},
        }
    )
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(dump_spec(spec))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = tmp_path / "tracker.log"
    argv = [
        sys.executable,
        "-m",
        "scalelab.components.tracker",
        *("--spec", str(spec_file), "--bootstrap", endpoints.bootstrap, "--run-id", "mine"),
        *("--run-dir", str(tmp_path), "--metrics-port", str(port), *extra),
    ]
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    proc = Tracker(popen, tmp_path, log, port)
    try:
        yield topic, proc
    finally:
        if popen.poll() is None:
            os.kill(popen.pid, signal.SIGCONT)
            popen.kill()
            popen.wait()


def test_records_of_other_runs_are_dropped_and_counted(
    endpoints: Endpoints, tracker: tuple[str, Tracker]
) -> None:
    """An output topic that also holds another run's records (and one that is not a record
    at all): qos.parquet holds this run's only, tracker.json counts the rest."""
    topic, proc = tracker
    publish(endpoints.bootstrap, topic, records("mine", range(10)))
    publish(endpoints.bootstrap, topic, records("other", range(5)) + [b"not json"])
    publish(endpoints.bootstrap, topic, records("mine", range(10, 12)))
    assert wait_until(lambda: proc.records_seen() == 12, 60), proc.log.read_text()
    assert proc.terminate() == 0, proc.log.read_text()
    assert sorted(proc.ids()) == sorted(f"mine:{seq}" for seq in range(12))
    assert proc.outcome() == {"drained": True, "behind": 0, "foreign_records": 6}


@pytest.mark.parametrize("tracker", [["--drain-timeout", "0"]], indirect=True)
def test_a_final_drain_that_gives_up_says_so(
    endpoints: Endpoints, tracker: tuple[str, Tracker]
) -> None:
    """The tracker is paused while 300 records arrive, then stopped with a zero drain
    timeout: it must not pretend it drained (the old tracker gave up silently). Rows
    written plus records left behind account for every record on the topic."""
    topic, proc = tracker
    publish(endpoints.bootstrap, topic, records("mine", range(1)))
    assert wait_until(lambda: proc.records_seen() == 1, 60), proc.log.read_text()
    os.kill(proc.popen.pid, signal.SIGSTOP)
    publish(endpoints.bootstrap, topic, records("mine", range(1, 301)))
    assert proc.terminate() == 0, proc.log.read_text()
    outcome = proc.outcome()
    assert outcome["drained"] is False
    assert isinstance(outcome["behind"], int) and outcome["behind"] > 0
    assert len(proc.ids()) + outcome["behind"] == 301
    assert "gave up" in proc.log.read_text()
