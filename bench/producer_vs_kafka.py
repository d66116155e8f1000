"""Unthrottled producer throughput: scalelab's producer against kafka-producer-perf-test.

Same broker (one local stack), same record size, one partition, acks=all,
linger.ms=2, each contender into a fresh topic, alternating the order over
``--rounds`` rounds (default 3), for two record sizes: the mean size of the
synthetic 640x480 JPEG frames (~39.5 kB) and ~1 kB (18x18 raw frames, 983 B).

- scalelab: the producer component as ``scalelab run`` starts it, with a
  constant rate of 1,000,000 msg/s for N/1e6 s, so every send is already late
  and it sends as fast as it can. msgs/s = sent / (end_ns - start_ns) of
  producer.json (first send to flush complete); "send only" uses last_send_ns
  instead of end_ns; the process's wall time (Python start-up, frame
  generation, 0.5 s start lead, flush) is shown too.
- Kafka: ``org.apache.kafka.tools.ProducerPerformance --throughput -1
  --producer-props acks=all linger.ms=2`` (its own figure: first send to
  flush); its wall time includes JVM start-up.

A third contender (``--no-big-batch`` leaves it out) is the same perf-test
with ``batch.size=1000000``, librdkafka's default batch size (the Java
default is 16384 B), to tell the clients' batching defaults from their speed.

MB/s = msgs/s x record payload / 1e6 (scalelab also sends a key and five
headers, ~110 B a message, not counted). When the ratio is under the goal
(``--diagnose auto``, or ``always``), variants of the send path are measured in
this process on the same broker and ``send_loop`` is profiled with cProfile, to
show where the time goes.

Goal: scalelab ≥ 0.9 × Kafka's own producer (messages/s).
Run: ``.venv/bin/python bench/producer_vs_kafka.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import subprocess
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from _common import LocalStack, isolated, machine, make_spec, median, run_producer, table, verdict
from scalelab.components import common
from scalelab.components.producer import (
    Schedule,
    SendContext,
    SendStats,
    producer_config,
    send_loop,
)
from scalelab.load.sources import make_source
from scalelab.paths import kafka_lib_dir
from scalelab.run import kafka_ops
from scalelab.spec.models import ExperimentSpec

GOAL_RATIO = 0.9
UNTHROTTLED_RATE = 1_000_000
SIZES = {
    "jpeg640x480": {"kind": "synthetic", "width": 640, "height": 480, "encoding": "jpeg"},
    "raw1k": {"kind": "synthetic", "width": 18, "height": 18, "encoding": "raw"},
}
SCALELAB = "scalelab"
KAFKA = "kafka perf-test"
KAFKA_BIG_BATCH = "kafka perf-test batch.size=1000000"
PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")


@dataclass
class Sample:
    size: str
    round: int
    contender: str
    messages: int
    seconds: float
    wall_s: float
    record_bytes: int
    send_only: float = float("nan")

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_s(self) -> float:
        return self.rate * self.record_bytes / 1e6


def fresh_topic(stack: LocalStack, base: ExperimentSpec, topic: str) -> ExperimentSpec:
    data = base.model_dump(mode="json")
    data["broker"]["input_topic"] = topic
    spec = ExperimentSpec.model_validate(data)
    kafka_ops.create_topics(kafka_ops.admin(stack.bootstrap), spec.broker, 1)
    return spec


def drop_topic(stack: LocalStack, topic: str) -> None:
    """Free the disk the round used."""
    admin = AdminClient({"bootstrap.servers": stack.bootstrap, "log_level": 0})
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result()


def run_scalelab(stack: LocalStack, spec: ExperimentSpec, n: int, tag: str, size: int) -> Sample:
    data = spec.model_dump(mode="json")
    data["load"] = {
        "profile": "constant",
        "rate": UNTHROTTLED_RATE,
        "duration": n / UNTHROTTLED_RATE,
    }
    run = run_producer(stack, ExperimentSpec.model_validate(data), tag, timeout=600)
    r = run.report
    if r["errors"] or r["acked"] != r["sent"]:
        raise RuntimeError(f"scalelab producer: {r['acked']} of {r['sent']} acked, {r['errors']}")
    seconds = (r["end_ns"] - r["start_ns"]) / 1e9
    sample = Sample(size_label(tag), 0, SCALELAB, r["sent"], seconds, run.wall_s, size)
    sample.send_only = r["sent"] / ((r["last_send_ns"] - r["start_ns"]) / 1e9)
    return sample


def run_kafka(stack: LocalStack, topic: str, n: int, size: int, tag: str, who: str) -> Sample:
    argv = ["java", "-Xmx512m", "-cp", f"{kafka_lib_dir()}/*"]
    argv += ["org.apache.kafka.tools.ProducerPerformance", "--topic", topic]
    argv += ["--num-records", str(n), "--record-size", str(size), "--throughput", "-1"]
    argv += ["--producer-props", f"bootstrap.servers={stack.bootstrap}", "acks=all", "linger.ms=2"]
    if who == KAFKA_BIG_BATCH:
        argv += ["batch.size=1000000"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    matches = PERF_LINE.findall(done.stdout)
    if done.returncode != 0 or not matches:
        raise RuntimeError(
            f"ProducerPerformance failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    sent, rate = int(matches[-1][0]), float(matches[-1][1])
    return Sample(size_label(tag), 0, who, sent, sent / rate, wall, size)


def size_label(tag: str) -> str:
    return tag.split("-")[0]


# -- diagnosis ------------------------------------------------------------------------------
def diagnose(stack: LocalStack, base: ExperimentSpec, source_spec: dict, n: int) -> None:
    """Where the scalelab producer's time goes: variants of the send path, then cProfile."""
    source = make_source(
        base.model_validate({**base.model_dump(mode="json"), "source": source_spec}).source
    )
    frame = source.encoded[0]
    variants = [
        ("send_loop (the component's send path)", lambda p, t: _send_loop(p, t, source, n)),
        (
            "produce + poll(0), key, 5 headers, delivery callback",
            lambda p, t: _bare(p, t, frame, n, True, True),
        ),
        (
            "produce + poll(0), key, 5 headers, no callback",
            lambda p, t: _bare(p, t, frame, n, True, False),
        ),
        ("produce + poll(0), key only", lambda p, t: _bare(p, t, frame, n, False, False)),
    ]
    rows = []
    for index, (label, fn) in enumerate(variants):
        topic = f"bench.pvk.diag.{index}"
        fresh_topic(stack, base, topic)
        producer = Producer(producer_config(stack.bootstrap))
        started = time.perf_counter()
        fn(producer, topic)
        sent_s = time.perf_counter() - started
        producer.flush(120)
        total = time.perf_counter() - started
        rows.append([label, n, n / sent_s, n / total, 1e6 * total / n])
        drop_topic(stack, topic)
    print()
    print(f"Diagnosis, in this process, {len(frame):,} B records, one thread, same broker")
    print(table(["variant", "msgs", "msgs/s (sends)", "msgs/s (+flush)", "µs/msg"], rows))
    topic = "bench.pvk.diag.profile"
    fresh_topic(stack, base, topic)
    producer = Producer(producer_config(stack.bootstrap))
    profiler = cProfile.Profile()
    profiler.enable()
    _send_loop(producer, topic, source, n)
    producer.flush(120)
    profiler.disable()
    drop_topic(stack, topic)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    print()
    print(f"cProfile of send_loop + flush, {n:,} messages, sorted by own time (tottime):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def _send_loop(producer: Producer, topic: str, source: object, n: int) -> None:
    stats = SendStats()
    ctx = SendContext(time.time_ns(), topic, "bench", "bench")
    frames = source.frames()  # type: ignore[attr-defined]
    send_loop(
        producer, Schedule(iter([0.0] * n)), frames, threading.Lock(), ctx, stats, threading.Event()
    )


def _bare(
    producer: Producer, topic: str, frame: bytes, n: int, headers: bool, callback: bool
) -> None:
    def on_delivery(error: object, message: object) -> None:
        pass

    for seq in range(n):
        kwargs: dict[str, object] = {"key": str(seq).encode()}
        if headers:
            now = str(time.time_ns()).encode()
            kwargs["headers"] = [
                (common.H_RUN_ID, b"bench"),
                (common.H_SEQ, str(seq).encode()),
                (common.H_SOURCE, b"bench"),
                (common.H_INTENDED, now),
                (common.H_SENT, now),
            ]
        if callback:
            kwargs["on_delivery"] = on_delivery
        while True:
            try:
                producer.produce(topic, value=frame, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jpeg-messages", type=int, default=20_000)
    parser.add_argument("--small-messages", type=int, default=300_000)
    parser.add_argument("--diagnose", choices=["auto", "always", "never"], default="auto")
    parser.add_argument(
        "--no-big-batch",
        dest="big_batch",
        action="store_false",
        help="leave out the perf-test run with batch.size=1000000 (librdkafka's default)",
    )
    args = parser.parse_args(argv)
    counts = {"jpeg640x480": args.jpeg_messages, "raw1k": args.small_messages}
    contenders = [SCALELAB, KAFKA] + ([KAFKA_BIG_BATCH] if args.big_batch else [])
    with isolated():
        base = make_spec(
            "bench-producer",
            broker={"partitions": 1},
            monitoring={"scrape_interval": 1},
            load={"profile": "constant", "rate": 1, "duration": 1},
        )
        print(f"{machine()}; 1 partition, acks=all, linger.ms=2; {args.rounds} rounds, rotating")
        samples: list[Sample] = []
        with LocalStack(base, "producer-vs-kafka") as stack:
            for label, source_spec in SIZES.items():
                data = base.model_dump(mode="json")
                data["source"] = source_spec
                sized = ExperimentSpec.model_validate(data)
                record = round(make_source(sized.source).mean_frame_bytes)
                n = counts[label]
                for rnd in range(1, args.rounds + 1):
                    shift = (rnd - 1) % len(contenders)
                    for who in contenders[shift:] + contenders[:shift]:
                        index = contenders.index(who)
                        topic = f"bench.pvk.{label}.{index}.{rnd}"
                        spec = fresh_topic(stack, sized, topic)
                        tag = f"{label}-{index}-{rnd}"
                        if who == SCALELAB:
                            sample = run_scalelab(stack, spec, n, tag, record)
                        else:
                            sample = run_kafka(stack, topic, n, record, tag, who)
                        sample.round = rnd
                        samples.append(sample)
                        drop_topic(stack, topic)
                        print(f"  {label} round {rnd} {who}: {sample.rate:,.0f} msg/s", flush=True)
            ratio, worst = min((_ratio(samples, label), label) for label in SIZES)
            if args.diagnose == "always" or (args.diagnose == "auto" and ratio < GOAL_RATIO):
                target = worst if args.diagnose == "auto" else "raw1k"  # per-message costs show
                diagnose(stack, base, SIZES[target], counts[target] // 2)
    print()
    print(report(samples))
    print()
    rows = []
    for label in SIZES:
        row: list[object] = [label, samples_of(samples, label, SCALELAB)[0].record_bytes]
        for who in contenders:
            row.append(median([s.rate for s in samples_of(samples, label, who)]))
        for who in contenders:
            row.append(median([s.mb_s for s in samples_of(samples, label, who)]))
        row.append(_ratio(samples, label))
        if args.big_batch:
            row.append(_ratio(samples, label, KAFKA_BIG_BATCH))
        rows.append(row)
    short = {SCALELAB: "scalelab", KAFKA: "perf-test", KAFKA_BIG_BATCH: "perf-test 1MB batch"}
    headers = ["size", "record B"]
    headers += [f"{short[who]} msg/s" for who in contenders]
    headers += [f"{short[who]} MB/s" for who in contenders]
    headers += ["ratio"] + (["ratio vs 1MB batch"] if args.big_batch else [])
    print("Medians over the rounds; ratio = scalelab / kafka-producer-perf-test (msgs/s)")
    print(table(headers, rows))
    figures = ", ".join(f"{label} {_ratio(samples, label):.2f}x" for label in SIZES)
    print(
        verdict(
            ratio >= GOAL_RATIO,
            f"scalelab producer / kafka-producer-perf-test: {figures} (goal ≥ {GOAL_RATIO}x)",
        )
    )


def samples_of(samples: list[Sample], label: str, who: str) -> list[Sample]:
    return [s for s in samples if s.size == label and s.contender == who]


def _ratio(samples: list[Sample], label: str, reference: str = "") -> float:
    ours = median([s.rate for s in samples_of(samples, label, SCALELAB)])
    theirs = median([s.rate for s in samples_of(samples, label, reference or KAFKA)])
    return ours / theirs


def report(samples: list[Sample]) -> str:
    headers = ["size", "round", "contender", "msgs", "seconds", "msgs/s", "MB/s"]
    headers += ["send-only msgs/s", "process wall s"]
    rows = [
        [s.size, s.round, s.contender, s.messages, s.seconds, s.rate, s.mb_s, s.send_only, s.wall_s]
        for s in samples
    ]
    return table(headers, rows)


if __name__ == "__main__":
    main()
