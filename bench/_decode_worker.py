"""The YOLO worker's pipeline with its model step replaced by decode only (bench-local).

`bench/flink_frames.py` runs this as a process beside the Flink `frames` job to compare
like with like. Everything is the product's `scalelab.components.worker`: its `Worker`
(Kafka consumer → `detect_batch` → output record → Kafka producer → commit once the
results are acknowledged), its consumer and producer settings, `Batcher`, output record
and run loop. Only the detector differs: `DecodeOnly.detect_batch` decodes each frame
with the worker's own `decode_frame` (OpenCV), dead-letters what does not decode, and
returns no detections, no preprocess, inference or postprocess (the product has no
decode-only mode: its detector always runs an ONNX model). That is the frames job's
`work: {decode: true, burn: 0}`: decode, the QoS record, Kafka in and out.

    python bench/_decode_worker.py --bootstrap HOST:PORT --input TOPIC --group G \
        --output TOPIC --dead-letter TOPIC --run-id ID [--batch 1]

It runs until SIGTERM, as the worker does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer

from scalelab.components import common
from scalelab.components.producer import producer_config
from scalelab.components.worker import Worker, WorkerContext, consumer_config, run
from scalelab.inference.batching import Batcher
from scalelab.inference.detector import BatchResult, FrameFailure, FrameResult, StageTimings
from scalelab.load.codec import FrameDecodeError, decode_frame


class DecodeOnly:
    """Stands in for `Detector`: decode every frame (timed), no model."""

    def detect_batch(self, frames: Sequence[bytes]) -> BatchResult:
        items: list[FrameResult | FrameFailure] = []
        for frame in frames:
            start = time.perf_counter_ns()
            try:
                decode_frame(frame)
            except FrameDecodeError as exc:
                items.append(FrameFailure(exc.reason))
                continue
            items.append(FrameResult([], StageTimings(time.perf_counter_ns() - start, 0, 0, 0)))
        decoded = sum(isinstance(item, FrameResult) for item in items)
        return BatchResult(items, decoded, 0, 0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("bootstrap", "input", "group", "output", "dead-letter", "run-id"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    common.setup_logging()
    stop = common.stop_event()
    ctx = WorkerContext("decode-0", "decode-only", args.run_id, args.output, args.dead_letter)
    consumer = Consumer(consumer_config(args.bootstrap, args.group, ctx.name))
    producer = Producer(producer_config(args.bootstrap))
    worker = Worker(consumer, producer, DecodeOnly(), Batcher(args.batch, 0.0), ctx)  # type: ignore[arg-type]
    consumer.subscribe([args.input], on_revoke=worker.on_revoke, on_lost=worker.on_lost)
    sys.exit(run(worker, stop))


if __name__ == "__main__":
    main()
