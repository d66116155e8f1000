"""Keyed sensor records for the Flink `join` job, at the spec's rate (Theodolite's load shape).

The producer's own machinery paces, stamps and counts every record (the same headers:
run id, sequence number, intended and actual send time; the same `producer.json`); only
the payload differs: `<sensor>;<reading>` for one of `workload.join.keys` sensors, and
records alternate between the two topics the join reads (the input topic and
`workload.join.second_topic`), so each stream carries half of the rate.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Iterator

from confluent_kafka import Producer
from prometheus_client import REGISTRY

from scalelab.components import common
from scalelab.components.pacing import PacingClock
from scalelab.components.producer import (
    LagCollector,
    Schedule,
    SendContext,
    SendStats,
    UndeliveredError,
    announce_start,
    flush,
    load_bounds,
    load_phase_rate,
    load_producer_config,
    rate_reporter,
    send_loop,
    summarise,
)
from scalelab.load.profiles import make_profile, send_times
from scalelab.spec.loader import load_resolved
from scalelab.spec.models import FlinkWorkload

SOURCE_ID = "sensors"


def readings(keys: int, seed: int = 0) -> Iterator[bytes]:
    """Endless `<sensor>;<reading>` payloads, sensors drawn uniformly."""
    draw = random.Random(seed)
    while True:
        yield b"sensor-%d;%.3f" % (draw.randrange(keys), draw.uniform(-20.0, 40.0))


def main() -> None:
    args = common.base_parser("scalelab sensor-record producer").parse_args()
    spec = load_resolved(args.spec, args.base_dir)
    if not isinstance(spec.workload, FlinkWorkload):
        raise SystemExit("the sensor producer feeds a Flink join workload")
    stop = common.stop_event()
    common.serve_metrics(args.metrics_port)
    join = spec.workload.join
    profile = make_profile(spec.load, spec.base_dir)
    schedule = Schedule(send_times(profile), spec.load.warmup)
    stats = SendStats()
    REGISTRY.register(LagCollector(stats))
    producer = Producer(load_producer_config(args.bootstrap))
    clock = PacingClock()
    start_ns = announce_start(args.run_dir, clock)
    topics = (spec.broker.input_topic, join.second_topic)
    contexts = [SendContext(start_ns, topic, args.run_id, SOURCE_ID, clock) for topic in topics]
    done = threading.Event()
    reporter = threading.Thread(
        target=rate_reporter, daemon=True, args=(profile, None, contexts[0], stats, done)
    )
    reporter.start()
    cpu_start = time.process_time()
    payloads, lock = readings(join.keys), threading.Lock()
    loops = [
        threading.Thread(
            target=send_loop, args=(producer, schedule, payloads, lock, ctx, stats, stop)
        )
        for ctx in contexts
    ]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join()
    undelivered = flush(producer, stop)
    stats.settle(len(producer))
    done.set()
    reporter.join(5)
    bounds = load_bounds(schedule, profile, None)
    result = summarise(stats, start_ns, clock.now_ns(), bounds)
    result["cpu_s"] = time.process_time() - cpu_start
    result["target_rate"] = load_phase_rate(bounds, spec.load.warmup, spec.load.duration)
    result["flush_undelivered"] = undelivered
    result["topics"] = list(topics)
    (args.run_dir / "producer.json").write_text(json.dumps(result, indent=2))
    if undelivered:
        raise UndeliveredError(undelivered, stats.sent)


if __name__ == "__main__":
    try:
        main()
    except UndeliveredError as e:
        print(f"scalelab sensor producer: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
