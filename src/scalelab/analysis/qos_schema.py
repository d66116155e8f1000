"""The columns of qos.parquet (one row per processed message), without the tracker's imports.

The tracker writes this file with a Kafka consumer; reading it needs only
pyarrow, so opening a dataset never imports confluent_kafka or ONNX Runtime.
A test checks that the tracker writes exactly this schema.
"""

from __future__ import annotations

import pyarrow as pa

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
