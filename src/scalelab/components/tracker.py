"""The QoS tracker: output topic → latency metrics and `qos.parquet`.

End-to-end latency runs from the message's *intended* send time to the
worker's done time, so a producer that falls behind cannot hide latency. On
SIGTERM the tracker reads on until it has reached the output topic's end
offsets as they were at that moment, so the tail of the run is never lost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, Message, TopicPartition
from prometheus_client import Counter, Histogram

from scalelab.components import common
from scalelab.components.worker import consumer_config
from scalelab.spec.loader import load_resolved

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60)
STAGES = ("queue", "decode", "preprocess", "inference", "postprocess")
E2E = Histogram(
    "scalelab_tracker_latency_seconds",
    "End-to-end latency from intended send time",
    ["worker"],
    buckets=LATENCY_BUCKETS,
)
STAGE = Histogram(
    "scalelab_tracker_stage_seconds",
    "Per-stage time reported by workers",
    ["worker", "stage"],
    buckets=LATENCY_BUCKETS,
)
RECORDS = Counter("scalelab_tracker_records_total", "Output records seen", ["worker"])

QOS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("run_id", pa.string()),
        ("seq", pa.int64()),
        ("source", pa.string()),
        ("worker", pa.string()),
        ("model", pa.string()),
        ("batch_size", pa.int32()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("intended_ns", pa.int64()),
        ("sent_ns", pa.int64()),
        ("consume_ns", pa.int64()),
        ("done_ns", pa.int64()),
        ("tracked_ns", pa.int64()),
        ("queue_s", pa.float64()),
        ("decode_s", pa.float64()),
        ("preprocess_s", pa.float64()),
        ("inference_s", pa.float64()),
        ("postprocess_s", pa.float64()),
        ("latency_s", pa.float64()),
        ("detections", pa.int32()),
    ]
)
FLUSH_ROWS = 2000
FLUSH_SECONDS = 2.0


class QosWriter:
    """Streams rows into Parquet in row groups; `close()` writes the footer."""

    def __init__(self, path: Path):
        self.writer = pq.ParquetWriter(path, QOS_SCHEMA, compression="zstd")
        self.rows: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=QOS_SCHEMA))
            self.rows = []
        self.last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def qos_row(record: dict[str, Any], tracked_ns: int) -> dict[str, Any]:
    row = {name: record.get(name) for name in QOS_SCHEMA.names}
    row["tracked_ns"] = tracked_ns
    row["latency_s"] = (record["done_ns"] - record["intended_ns"]) / 1e9
    return row


def observe(row: dict[str, Any]) -> None:
    worker = str(row["worker"])
    E2E.labels(worker).observe(row["latency_s"])
    RECORDS.labels(worker).inc()
    for stage in STAGES:
        STAGE.labels(worker, stage).observe(row[f"{stage}_s"])


def handle(message: Message, writer: QosWriter) -> None:
    try:
        record = json.loads(message.value() or b"")
        row = qos_row(record, time.time_ns())
    except (ValueError, KeyError, TypeError):
        return  # not one of ours; the accounting counts output records from offsets
    writer.add(row)
    observe(row)


def end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }


def reached(consumer: Consumer, targets: dict[int, int], topic: str) -> bool:
    positions = consumer.position([TopicPartition(topic, p) for p in targets])
    done = {tp.partition: tp.offset for tp in positions}
    return all(done.get(p, -1) >= end or end == 0 for p, end in targets.items())


def drain_to_end(consumer: Consumer, writer: QosWriter, topic: str, timeout: float = 60) -> None:
    targets = end_offsets(consumer, topic)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not reached(consumer, targets, topic):
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            handle(message, writer)


def main() -> None:
    parser = common.base_parser("scalelab QoS tracker")
    args = parser.parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    topic = spec.broker.output_topic
    consumer = Consumer(consumer_config(args.bootstrap, f"scalelab-tracker-{args.run_id}"))
    consumer.subscribe([topic])
    writer = QosWriter(args.run_dir / "qos.parquet")
    try:
        while not stop.is_set():
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                handle(message, writer)
            writer.flush() if time.monotonic() - writer.last_flush > FLUSH_SECONDS else None
        drain_to_end(consumer, writer, topic)
    finally:
        writer.close()
        consumer.close()


if __name__ == "__main__":
    main()
