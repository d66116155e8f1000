"""The local platform against the real broker, Prometheus and node exporter."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from scalelab.errors import ComponentError
from scalelab.platform.base import ComponentLaunch, Endpoints
from scalelab.platform.local.platform import LocalPlatform
from scalelab.platform.process import wait_until
from scalelab.run import kafka_ops
from scalelab.spec.models import BrokerSpec

pytestmark = pytest.mark.integration


def test_record_produced_is_consumed_back(endpoints: Endpoints) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    broker = BrokerSpec(
        input_topic=topic, output_topic=topic + "-out", dead_letter_topic=topic + "-dlq"
    )
    kafka_ops.create_topics(kafka_ops.admin(endpoints.bootstrap), broker, 1)
    producer = Producer({"bootstrap.servers": endpoints.bootstrap})
    producer.produce(topic, key=b"k", value=b"hello", headers=[("run_id", b"r1")])
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints.bootstrap,
            "group.id": topic,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            candidate = consumer.poll(1.0)
            if candidate is not None and candidate.error() is None:
                message = candidate
        assert message is not None
        assert (message.key(), message.value()) == (b"k", b"hello")
        assert dict(message.headers() or [])["run_id"] == b"r1"
    finally:
        consumer.close()


def test_topics_have_the_requested_partitions(endpoints: Endpoints) -> None:
    name = f"parts-{uuid.uuid4().hex[:8]}"
    broker = BrokerSpec(input_topic=name, output_topic=name + "-out", dead_letter_topic=name + "-d")
    client = kafka_ops.admin(endpoints.bootstrap)
    kafka_ops.create_topics(client, broker, 5)
    assert kafka_ops.topic_partitions(client, name) == [0, 1, 2, 3, 4]
    assert kafka_ops.topic_partitions(client, name + "-out") == [0, 1, 2, 3, 4]
    assert kafka_ops.topic_partitions(client, name + "-d") == [0]


def _query(url: str, promql: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    return list(answer["data"]["result"])


def test_prometheus_scraped_broker_jmx_and_node_exporter(local_stack: LocalPlatform) -> None:
    assert local_stack.endpoints is not None
    url = local_stack.endpoints.prometheus_url
    assert wait_until(
        lambda: bool(_query(url, "kafka_server_brokertopicmetrics_bytesin_total")), 30
    )
    assert _query(url, 'node_cpu_seconds_total{component="node-exporter"}')
    run_id = local_stack.run_id
    up = {r["metric"]["component"]: r["value"][1] for r in _query(url, f'up{{run_id="{run_id}"}}')}  # type: ignore[index]
    assert up == {"broker": "1", "node-exporter": "1", "prometheus": "1"}


def test_a_component_that_dies_is_reported_with_its_log(local_stack: LocalPlatform) -> None:
    """A worker started without its required arguments exits 2; the platform says so."""
    launch = ComponentLaunch(
        "doomed-worker", "worker", "scalelab.components.worker", [], scrape=False
    )
    local_stack.start_component(launch)
    proc = local_stack.processes["doomed-worker"]
    assert wait_until(lambda: proc.exit_code() is not None, 30)
    with pytest.raises(ComponentError) as caught:
        local_stack.check_health()
    local_stack.expected_exits.add("doomed-worker")
    assert caught.value.component == "doomed-worker"
    assert "exited with code 2" in caught.value.reason
    assert "the following arguments are required" in caught.value.log_tail
