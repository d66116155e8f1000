"""Unthrottled producer throughput and CPU: scalelab's producer against kafka-producer-perf-test.

Like for like, and the settings are printed with the figures:

- the same broker (one local stack), a fresh 1-partition topic per run,
  the same record count and warm-up count;
- the same client settings on both sides: acks=all, enable.idempotence=true,
  compression none, batch.size=1000000 (librdkafka's default; Java's is
  16384, which puts each 40 kB record in a batch of its own), linger.ms=2,
  at most 5 requests in flight (both defaults);
- payloads prepared before timing on both sides: scalelab encodes its frames
  once at start; the perf-test reads ``--payload-file``, which holds ASCII
  records of exactly the byte lengths of scalelab's frames (the JPEG frames
  are binary and the perf-test reads its file as UTF-8 text, so the contents
  differ, the sizes do not; there is no compression);
- warm-up excluded on both sides: the first W records are sent and not
  counted (``--warmup-records`` for the perf-test, whose steady-state line is
  read; ``load.warmup`` for scalelab, whose producer.json gives the first
  load-phase send, ``load_sent`` and ``load_cpu_s``);
- ``--rounds`` (default 3) rounds, the order of the contenders rotating.

Rates: messages / (first counted send to last acknowledgement). CPU per
message, steady state: scalelab's ``load_cpu_s`` (process CPU, all threads,
from the first counted send until flushed); the perf-test's CPU of the full
run less that of a run of the W warm-up records alone (JVM start and warm-up
cost out), both from ``getrusage(RUSAGE_CHILDREN)``. The whole-process CPU
(start-up included) is shown too, and the broker's CPU per message while each
contender ran. Machine load: the 1-minute load average at the start of each
run and the cores used by everything else (machine busy time less the
contender, the broker and this benchmark) during it.

What differs and cannot be matched: scalelab sends a key and five headers
(run id, sequence, source, intended and actual send time; ~110 B a message,
not in "record B"); the perf-test sends neither.

``--diagnose`` (auto: when a ratio is under 1.0) measures variants of the
send path in this process on the same broker, with the CPU per message, and
profiles ``send_loop`` with cProfile.

Goal: scalelab ≥ 1.0 × Kafka's own producer (messages/s), 40 kB frames.
Run: ``.venv/bin/python bench/producer_vs_kafka.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import string
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Producer

from _common import (
    LoadMeter,
    LoadWindow,
    LocalStack,
    children_cpu_s,
    isolated,
    machine,
    make_spec,
    median,
    new_topic,
    run_producer,
    spread,
    table,
    verdict,
)
from _common import drop_topic as _drop_topic
from scalelab.components import common
from scalelab.components.producer import (
    LOAD_PRODUCER_OVERRIDES,
    Schedule,
    SendContext,
    SendStats,
    load_producer_config,
    producer_config,
    send_loop,
)
from scalelab.load.sources import make_source
from scalelab.paths import kafka_lib_dir
from scalelab.run import kafka_ops
from scalelab.spec.models import ExperimentSpec

GOAL_RATIO = 1.0
UNTHROTTLED_RATE = 1_000_000
SIZES = {
    "jpeg640x480": {"kind": "synthetic", "width": 640, "height": 480, "encoding": "jpeg"},
    "raw1k": {"kind": "synthetic", "width": 18, "height": 18, "encoding": "raw"},
}
SCALELAB = "scalelab"
KAFKA = "perf-test"
CONTENDERS = [SCALELAB, KAFKA]
BATCH_SIZE = 1_000_000
LINGER_MS = 2
SHARED_SETTINGS = {
    "acks": "all",
    "enable.idempotence": "true",
    "compression.type": "none",
    "batch.size": str(BATCH_SIZE),
    "linger.ms": str(LINGER_MS),
    "max.in.flight.requests.per.connection": "5",
}
"""Client settings both contenders run with (librdkafka and Java spell them the same)."""
STEADY_LINE = re.compile(r"(\d+) steady state records sent, ([\d.]+) records/sec")
TOTAL_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")


@dataclass
class Sample:
    size: str
    round: int
    contender: str
    messages: int  # counted (after warm-up)
    seconds: float  # first counted send to last acknowledgement
    record_bytes: float
    cpu_steady_s: float  # contender CPU for the counted messages
    cpu_process_s: float  # contender CPU for the whole process, start-up included
    total_messages: int  # warm-up included
    window: LoadWindow = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_s(self) -> float:
        return self.rate * self.record_bytes / 1e6

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_steady_s / self.messages

    @property
    def process_cpu_us(self) -> float:
        return 1e6 * self.cpu_process_s / self.total_messages

    @property
    def broker_us(self) -> float:
        return 1e6 * self.window.broker_s / self.total_messages

    @property
    def others(self) -> float:
        return self.window.others_cores(self.cpu_process_s)


def settings_line(n: dict[str, int], warmup: dict[str, int]) -> str:
    shared = " ".join(f"{k}={v}" for k, v in SHARED_SETTINGS.items())
    counts = ", ".join(f"{label} {n[label]:,} counted + {warmup[label]:,} warm-up" for label in n)
    return (
        f"both: one local broker, fresh 1-partition topic per run, {shared}; records: {counts}; "
        "payload prepared before timing (scalelab: frames encoded at start; perf-test: "
        "--payload-file of the same byte lengths); warm-up not counted (scalelab load.warmup, "
        "perf-test --warmup-records)\n"
        f"scalelab only: {LOAD_PRODUCER_OVERRIDES}, key + 5 headers per message (~110 B, "
        "not in record B); perf-test: -Xmx512m, no key, no headers"
    )


def fresh_topic(stack: LocalStack, base: ExperimentSpec, topic: str) -> ExperimentSpec:
    data = base.model_dump(mode="json")
    data["broker"]["input_topic"] = topic
    spec = ExperimentSpec.model_validate(data)
    kafka_ops.create_topics(kafka_ops.admin(stack.bootstrap), spec.broker, 1)
    return spec


def drop_topic(stack: LocalStack, topic: str) -> None:
    """Free the disk the run used."""
    _drop_topic(stack.bootstrap, topic)


def broker_pid(stack: LocalStack) -> int:
    return stack.platform.processes["broker"].pid


def run_scalelab(
    stack: LocalStack, spec: ExperimentSpec, n: int, warmup: int, tag: str, size: float
) -> Sample:
    data = spec.model_dump(mode="json")
    data["load"] = {
        "profile": "constant",
        "rate": UNTHROTTLED_RATE,
        "duration": (n + warmup) / UNTHROTTLED_RATE,
        "warmup": warmup / UNTHROTTLED_RATE,
    }
    before = children_cpu_s()
    with LoadMeter(broker_pid(stack)) as meter:
        run = run_producer(stack, ExperimentSpec.model_validate(data), tag, timeout=600)
    process_cpu = children_cpu_s() - before
    r = run.report
    if r["errors"] or r["acked"] != r["sent"] or r["load_sent"] != n:
        raise RuntimeError(f"scalelab producer: {r['acked']} of {r['sent']} acked, {r['errors']}")
    seconds = (r["end_ns"] - r["load_first_send_ns"]) / 1e9
    sample = Sample(tag, 0, SCALELAB, n, seconds, size, r["load_cpu_s"], process_cpu, r["sent"])
    sample.window = meter.window  # type: ignore[assignment]
    return sample


def perf_test_argv(stack: LocalStack, topic: str, payload: Path, records: int) -> list[str]:
    argv = ["java", "-Xmx512m", "-cp", f"{kafka_lib_dir()}/*"]
    argv += ["org.apache.kafka.tools.ProducerPerformance", "--topic", topic]
    argv += ["--num-records", str(records), "--payload-file", str(payload)]
    argv += ["--throughput", "-1", "--producer-props", f"bootstrap.servers={stack.bootstrap}"]
    return argv + [f"{k}={v}" for k, v in SHARED_SETTINGS.items()]


def _java(argv: list[str]) -> tuple[str, float]:
    before = children_cpu_s()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    cpu = children_cpu_s() - before
    if done.returncode != 0 or not TOTAL_LINE.search(done.stdout):
        raise RuntimeError(
            f"ProducerPerformance failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout, cpu


def run_kafka(
    stack: LocalStack, topic: str, payload: Path, n: int, warmup: int, tag: str, size: float
) -> Sample:
    """The full run (warm-up + counted), then the warm-up alone into another topic."""
    argv = perf_test_argv(stack, topic, payload, n + warmup) + ["--warmup-records", str(warmup)]
    with LoadMeter(broker_pid(stack)) as meter:
        out, cpu_all = _java(argv)
    steady = STEADY_LINE.findall(out)
    if not steady:
        raise RuntimeError(f"no steady-state line from ProducerPerformance:\n{out[-2000:]}")
    counted, rate = int(steady[-1][0]), float(steady[-1][1])
    warm_topic = f"{topic}.warmup-only"
    new_topic(stack.bootstrap, warm_topic)
    _, cpu_warm = _java(perf_test_argv(stack, warm_topic, payload, warmup))
    drop_topic(stack, warm_topic)
    sample = Sample(
        tag, 0, KAFKA, counted, counted / rate, size, cpu_all - cpu_warm, cpu_all, n + warmup
    )
    sample.window = meter.window  # type: ignore[assignment]
    return sample


def write_payload_file(frames: list[bytes], directory: Path) -> Path:
    """ASCII records of exactly the frames' byte lengths, one a line (the perf-test's format)."""
    rng = random.Random(7)
    alphabet = (string.ascii_letters + string.digits).encode()
    lines = [bytes(rng.choices(alphabet, k=len(frame))) for frame in frames]
    path = directory / f"payload-{len(frames)}-{sum(map(len, frames))}.txt"
    path.write_bytes(b"\n".join(lines))
    return path


# -- diagnosis ------------------------------------------------------------------------------
def diagnose(stack: LocalStack, base: ExperimentSpec, source_spec: dict, n: int) -> None:
    """Where the scalelab producer's time goes: variants of the send path, then cProfile."""
    source = make_source(
        base.model_validate({**base.model_dump(mode="json"), "source": source_spec}).source
    )
    frame = source.encoded[0]
    variants = [
        ("send_loop (the component's send path)", True, lambda p, t: _send_loop(p, t, source, n)),
        (
            "produce + poll(0)/64, key, 5 headers",
            True,
            lambda p, t: _bare(p, t, frame, n, True),
        ),
        ("produce + poll(0)/64, key only", True, lambda p, t: _bare(p, t, frame, n, False)),
        (
            "produce + poll(0)/64, key, 5 headers, report every delivery",
            False,
            lambda p, t: _bare(p, t, frame, n, True),
        ),
    ]
    rows = []
    for index, (label, load_config, fn) in enumerate(variants):
        topic = f"bench.pvk.diag.{index}"
        fresh_topic(stack, base, topic)
        config = load_producer_config(stack.bootstrap) if load_config else None
        if config is None:
            config = {**producer_config(stack.bootstrap), "queue.buffering.max.messages": 10**6}
        producer = Producer({**config, "log_level": 0})  # quiet once the stack is gone
        producer.produce(topic, b"warm")
        producer.flush(30)
        started, cpu0 = time.perf_counter(), time.process_time()
        fn(producer, topic)
        sent_s = time.perf_counter() - started
        producer.flush(120)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu0
        rows.append([label, n, n / sent_s, n / total, 1e6 * cpu / n, os.getloadavg()[0]])
        drop_topic(stack, topic)
    print()
    print(f"Diagnosis, in this process, {len(frame):,} B records, one thread, same broker")
    headers = ["variant", "msgs", "msgs/s (sends)", "msgs/s (+flush)", "CPU µs/msg", "load1"]
    print(table(headers, rows))
    topic = "bench.pvk.diag.profile"
    fresh_topic(stack, base, topic)
    producer = Producer({**load_producer_config(stack.bootstrap), "log_level": 0})
    profiler = cProfile.Profile()
    profiler.enable()
    _send_loop(producer, topic, source, n)
    producer.flush(120)
    profiler.disable()
    drop_topic(stack, topic)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print()
    print(f"cProfile of send_loop + flush, {n:,} messages, sorted by own time (tottime):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:5000])


def _send_loop(producer: Producer, topic: str, source: object, n: int) -> None:
    stats = SendStats()
    ctx = SendContext(time.time_ns(), topic, "bench", "bench")
    frames = source.frames()  # type: ignore[attr-defined]
    send_loop(
        producer, Schedule(iter([0.0] * n)), frames, threading.Lock(), ctx, stats, threading.Event()
    )


def _bare(producer: Producer, topic: str, frame: bytes, n: int, headers: bool) -> None:
    def on_delivery(error: object, message: object) -> None:
        pass

    produce, poll = producer.produce, producer.poll
    for seq in range(n):
        hdrs: common.Headers | None = None
        if headers:
            now = b"%d" % time.time_ns()
            hdrs = [
                (common.H_RUN_ID, b"bench"),
                (common.H_SEQ, b"%d" % seq),
                (common.H_SOURCE, b"bench"),
                (common.H_INTENDED, now),
                (common.H_SENT, now),
            ]
        while True:
            try:
                produce(topic, frame, b"%d" % seq, headers=hdrs, on_delivery=on_delivery)
                break
            except BufferError:
                poll(0.005)
        if seq % 64 == 0:
            poll(0)


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jpeg-messages", type=int, default=20_000)
    parser.add_argument("--small-messages", type=int, default=300_000)
    parser.add_argument("--warmup-fraction", type=float, default=0.25)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--diagnose", choices=["auto", "always", "never"], default="auto")
    args = parser.parse_args(argv)
    counts = {"jpeg640x480": args.jpeg_messages, "raw1k": args.small_messages}
    counts = {label: counts[label] for label in args.sizes}
    warmups = {label: int(n * args.warmup_fraction) for label, n in counts.items()}
    samples: list[Sample] = []
    with isolated() as dirs, tempfile.TemporaryDirectory(prefix="bench-pvk-") as tmp:
        base = make_spec(
            "bench-producer",
            broker={"partitions": 1},
            monitoring={"scrape_interval": 1},
            load={"profile": "constant", "rate": 1, "duration": 1},
        )
        print(f"{machine()}; {args.rounds} rounds, order rotating; runs in {dirs['SCALELAB_RUNS']}")
        print(settings_line(counts, warmups))
        with LocalStack(base, "producer-vs-kafka") as stack:
            for label in counts:
                data = base.model_dump(mode="json")
                data["source"] = SIZES[label]
                sized = ExperimentSpec.model_validate(data)
                source = make_source(sized.source)
                payload = write_payload_file(source.encoded, Path(tmp))
                record = source.mean_frame_bytes
                n, warmup = counts[label], warmups[label]
                for rnd in range(1, args.rounds + 1):
                    shift = (rnd - 1) % len(CONTENDERS)
                    for who in CONTENDERS[shift:] + CONTENDERS[:shift]:
                        index = CONTENDERS.index(who)
                        topic = f"bench.pvk.{label}.{index}.{rnd}"
                        spec = fresh_topic(stack, sized, topic)
                        tag = f"{label}-{index}-{rnd}"
                        if who == SCALELAB:
                            sample = run_scalelab(stack, spec, n, warmup, tag, record)
                        else:
                            sample = run_kafka(stack, topic, payload, n, warmup, tag, record)
                        sample.size, sample.round = label, rnd
                        samples.append(sample)
                        drop_topic(stack, topic)
                        print(
                            f"  {label} round {rnd} {who}: {sample.rate:,.0f} msg/s, "
                            f"{sample.cpu_us:.2f} µs CPU/msg, load1 {sample.window.load1:.1f}, "
                            f"others {sample.others:.2f} cores",
                            flush=True,
                        )
            ratios = {label: _ratios(samples, label) for label in counts}
            worst = min(counts, key=lambda label: median(ratios[label]))
            if args.diagnose == "always" or (
                args.diagnose == "auto" and median(ratios[worst]) < GOAL_RATIO
            ):
                target = "raw1k" if "raw1k" in counts else worst  # per-message costs show there
                diagnose(stack, base, SIZES[target], counts[target] // 2)
    print()
    print(report(samples))
    print()
    print(summary(samples, list(counts)))
    print()
    print(settings_line(counts, warmups))
    jpeg = "jpeg640x480" if "jpeg640x480" in counts else worst
    figures = ", ".join(f"{label} {spread(ratios[label], '{:.2f}')}x" for label in counts)
    print(
        verdict(
            median(ratios[jpeg]) >= GOAL_RATIO,
            f"scalelab / kafka-producer-perf-test msg/s, median [min..max] of the rounds' "
            f"ratios: {figures} (goal ≥ {GOAL_RATIO}x for {jpeg})",
        )
    )


def samples_of(samples: list[Sample], label: str, who: str) -> list[Sample]:
    return [s for s in samples if s.size == label and s.contender == who]


def _ratios(samples: list[Sample], label: str) -> list[float]:
    """scalelab / perf-test msg/s within each round (neighbours in time, so the load is alike)."""
    ours = {s.round: s.rate for s in samples_of(samples, label, SCALELAB)}
    theirs = {s.round: s.rate for s in samples_of(samples, label, KAFKA)}
    return [ours[r] / theirs[r] for r in sorted(ours) if r in theirs]


def summary(samples: list[Sample], labels: list[str]) -> str:
    headers = ["size", "contender", "record B", "msg/s", "MB/s", "CPU µs/msg (steady)"]
    headers += ["CPU µs/msg (process)", "broker CPU µs/msg", "load1", "others' cores"]
    rows: list[list[object]] = []
    for label in labels:
        for who in CONTENDERS:
            mine = samples_of(samples, label, who)
            rows.append(
                [
                    label,
                    who,
                    round(mine[0].record_bytes),
                    spread([s.rate for s in mine], "{:,.0f}"),
                    spread([s.mb_s for s in mine], "{:.1f}"),
                    spread([s.cpu_us for s in mine], "{:.2f}"),
                    spread([s.process_cpu_us for s in mine], "{:.2f}"),
                    spread([s.broker_us for s in mine], "{:.2f}"),
                    spread([s.window.load1 for s in mine], "{:.1f}"),
                    spread([s.others for s in mine], "{:.2f}"),
                ]
            )
        ratio = _ratios(samples, label)
        cpu = [
            a.cpu_us / b.cpu_us
            for a, b in zip(
                samples_of(samples, label, SCALELAB), samples_of(samples, label, KAFKA), strict=True
            )
        ]
        ratio_row: list[object] = [label, "ratio scalelab/perf-test", ""]
        ratio_row += [spread(ratio, "{:.2f}"), "", spread(cpu, "{:.2f}"), "", "", "", ""]
        rows.append(ratio_row)
    return "Median [min..max] over the rounds (ratios: within each round)\n" + table(headers, rows)


def report(samples: list[Sample]) -> str:
    headers = ["size", "round", "contender", "counted", "seconds", "msgs/s", "MB/s"]
    headers += ["CPU µs/msg", "process CPU s", "broker CPU s", "wall s", "load1", "others cores"]
    rows = [
        [
            s.size,
            s.round,
            s.contender,
            s.messages,
            s.seconds,
            s.rate,
            s.mb_s,
            s.cpu_us,
            s.cpu_process_s,
            s.window.broker_s,
            s.window.wall_s,
            s.window.load1,
            s.others,
        ]
        for s in samples
    ]
    return table(headers, rows)


if __name__ == "__main__":
    main()
