"""Rate accuracy of the load generator, counted at the broker and at the producer, idle and loaded.

One local stack (broker, Prometheus scraping every second, node exporter).
For each condition (``idle``: nothing added; ``hog``: ``--hog`` busy-loop
processes, declared background load, started before and stopped after the
condition's runs), each round and each constant rate (default 100 and 500
msg/s of 160x120 synthetic JPEG frames, 15 s), two contenders send into a
fresh 1-partition topic with ``message.timestamp.type=LogAppendTime``, their
order rotating between rounds:

- scalelab: the producer component as ``scalelab run`` starts it;
- seed: the seed project's feeder loop (``seed_feeder.py``: 4 threads, sleep
  "interval minus time spent", wait for each acknowledgement), same frames.

Afterwards the topic is read back. Per second of the schedule (from the
contender's own start time), the messages the broker appended in that second
(its LogAppendTime, ms) and the messages the producer sent in it (scalelab's
``sent_ns`` header, the seed's own send stamps) are compared with the rate:
p50/p99/max of |achieved - rate| / rate over the seconds, the first and last
left out. Also: shortfall (1 - messages appended in the schedule's window /
rate x seconds), drift (message k is due at start + k / rate: the median
lateness at the broker of the last second's worth of messages less that of
those due in the second second; positive = falling behind), scalelab's
schedule lag (sent - intended) p99 and max, and CPU per message (process CPU
from the first send until flushed). With every run: the 1-minute load
average and the cores other processes used meanwhile.

Then (idle only, ``--poisson-seconds 0`` skips it) a Poisson profile: the
inter-arrival times of the intended and the actual send times against the
exponential distribution (scipy.stats.kstest).

Goal: scalelab's p99 per-second error ≤ 2 % at the broker, idle.
Run: ``.venv/bin/python bench/rate_accuracy.py [--rates 100 500] [--seconds 15] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from scipy import stats

from _common import (
    LoadMeter,
    LocalStack,
    children_cpu_s,
    drop_topic,
    isolated,
    machine,
    make_spec,
    new_topic,
    read_send_times,
    run_producer,
    spread,
    table,
    verdict,
)
from scalelab.spec.models import ExperimentSpec

GOAL_P99_ERROR_PERCENT = 2.0
SCALELAB = "scalelab"
SEED = "seed feeder"
CONTENDERS = [SCALELAB, SEED]
HERE = Path(__file__).resolve().parent
LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}


@dataclass
class Run:
    condition: str
    rate: float
    round: int
    contender: str
    expected: int  # rate x seconds
    appended: int  # messages in the topic
    in_window: int  # appended within the schedule's seconds
    broker: tuple[float, float, float]  # per-second error % p50, p99, max (broker time)
    producer: tuple[float, float, float]  # the same by the producer's send stamps
    drift_s: float
    lag_p99_ms: float
    lag_max_ms: float
    cpu_us: float
    load1: float
    others: float

    @property
    def shortfall(self) -> float:
        return 100 * (1 - self.in_window / self.expected)


# -- reading ---------------------------------------------------------------------------------
def broker_times_ns(bootstrap: str, topic: str, timeout: float = 120) -> np.ndarray:
    """LogAppendTime of every message of ``topic`` (ns, ms resolution), in offset order."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-rate", "enable.auto.commit": False}
    )
    times: list[int] = []
    try:
        tp = TopicPartition(topic, 0, 0)
        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
        consumer.assign([tp])
        deadline = time.monotonic() + timeout
        while len(times) < end and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    kind, ms = message.timestamp()
                    assert kind == 2, "topic is not LogAppendTime"  # TIMESTAMP_LOG_APPEND_TIME
                    times.append(ms * 1_000_000)
        if len(times) < end:
            raise TimeoutError(f"read {len(times)} of {end} messages of {topic}")
    finally:
        consumer.close()
    return np.asarray(times, dtype=np.int64)


def per_second_errors(
    times_ns: np.ndarray, start_ns: int, rate: float, seconds: int
) -> tuple[float, float, float]:
    """p50/p99/max of |count - rate| / rate per second, first and last second left out."""
    bins = (times_ns - start_ns) // 1_000_000_000
    counts = np.bincount(bins[(bins >= 0) & (bins < seconds)], minlength=seconds)[:seconds]
    errors = 100 * np.abs(counts - rate) / rate
    inner = errors[1:-1]
    return float(np.percentile(inner, 50)), float(np.percentile(inner, 99)), float(inner.max())


def drift_s(times_ns: np.ndarray, start_ns: int, rate: float, seconds: int) -> float:
    """How much further behind the schedule the sender is at the end than after the start.

    Message k (in append order) is due at start + k / rate; its lateness is
    its append time less that. Drift = median lateness of the last second's
    worth of messages (the last `rate` appended) less that of the messages due
    in the second second (the first holds the start-up: connection,
    metadata). > 0: falling behind; a sender that sends too few messages
    drifts by the time it lost.
    """
    due = start_ns + (np.arange(times_ns.size) * 1e9 / rate).astype(np.int64)
    late = (times_ns - due) / 1e9
    early = late[(due - start_ns) // 1_000_000_000 == 1]
    last = late[-max(1, int(rate)) :]
    if early.size == 0 or times_ns.size < 2 * rate:
        return float("nan")
    return float(np.median(last) - np.median(early))


# -- contenders ------------------------------------------------------------------------------
def spec_for(base: ExperimentSpec, topic: str, load: dict[str, object]) -> ExperimentSpec:
    data = base.model_dump(mode="json")
    data["broker"]["input_topic"] = topic
    data["load"] = load
    return ExperimentSpec.model_validate(data)


def run_scalelab(stack: LocalStack, base: ExperimentSpec, topic: str, rate: float, seconds: int):
    load = {"profile": "constant", "rate": rate, "duration": seconds}
    run = run_producer(stack, spec_for(base, topic, load), topic.replace(".", "-"))
    sent = read_send_times(stack.bootstrap, topic)
    lag_ms = (sent["sent_ns"] - sent["intended_ns"]) / 1e6
    r = run.report
    return int(r["start_ns"]), np.sort(sent["sent_ns"]), lag_ms, r["cpu_s"] / max(r["sent"], 1)


def run_seed(stack: LocalStack, topic: str, rate: float, seconds: int, size: tuple[int, int]):
    out = Path(stack.dir) / f"{topic}.json"
    argv = [sys.executable, str(HERE / "seed_feeder.py"), "--bootstrap", stack.bootstrap]
    argv += ["--topic", topic, "--rate", str(rate), "--duration", str(seconds), "--out", str(out)]
    argv += ["--width", str(size[0]), "--height", str(size[1])]
    subprocess.run(argv, check=True, timeout=seconds + 120)
    result = json.loads(out.read_text())
    sent = np.asarray(result["sent_ns"], dtype=np.int64)
    cpu = result["cpu_s"] / max(sent.size, 1)
    return int(result["start_ns"]), sent, np.asarray([np.nan]), cpu


def one_run(
    stack: LocalStack, base: ExperimentSpec, args: argparse.Namespace, key: tuple, who: str
) -> Run:
    condition, rate, rnd = key
    seconds = int(args.seconds)
    topic = f"bench.rate.{condition}.{rate:g}.{rnd}.{CONTENDERS.index(who)}"
    new_topic(stack.bootstrap, topic, config=LOG_APPEND)
    before = children_cpu_s()
    with LoadMeter(stack.platform.processes["broker"].pid) as meter:
        if who == SCALELAB:
            start, sent, lag_ms, cpu = run_scalelab(stack, base, topic, rate, seconds)
        else:
            start, sent, lag_ms, cpu = run_seed(stack, topic, rate, seconds, args.size)
    process_cpu = children_cpu_s() - before
    appended = broker_times_ns(stack.bootstrap, topic)
    drop_topic(stack.bootstrap, topic)
    window = meter.window
    assert window is not None
    bins = (appended - start) // 1_000_000_000
    return Run(
        condition,
        rate,
        rnd,
        who,
        expected=int(round(rate * seconds)),
        appended=int(appended.size),
        in_window=int(np.sum((bins >= 0) & (bins < seconds))),
        broker=per_second_errors(appended, start, rate, seconds),
        producer=per_second_errors(sent, start, rate, seconds),
        drift_s=drift_s(appended, start, rate, seconds),
        lag_p99_ms=float(np.nanpercentile(lag_ms, 99)) if np.isfinite(lag_ms).any() else np.nan,
        lag_max_ms=float(np.nanmax(lag_ms)) if np.isfinite(lag_ms).any() else np.nan,
        cpu_us=1e6 * cpu,
        load1=window.load1,
        others=window.others_cores(process_cpu),
    )


@contextlib.contextmanager
def hog(processes: int) -> Iterator[None]:
    """Declared background load: busy-loop processes, stopped on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(1)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


# -- Poisson ---------------------------------------------------------------------------------
def poisson(
    stack: LocalStack, base: ExperimentSpec, rate: float, seconds: float
) -> tuple[list[list], str]:
    load = {"profile": "poisson", "rate": rate, "duration": seconds, "seed": 1}
    topic = "bench.rate.poisson"
    new_topic(stack.bootstrap, topic, config=LOG_APPEND)
    run_producer(stack, spec_for(base, topic, load), "poisson")
    times = read_send_times(stack.bootstrap, topic)
    scale = 1.0 / rate
    rows = []
    gaps = {
        "intended": np.diff(times["intended_ns"]) / 1e9,
        "actual (sent_ns)": np.diff(times["sent_ns"]) / 1e9,
    }
    for label, gap in gaps.items():
        test = stats.kstest(gap, "expon", args=(0, scale))
        rows.append(
            [
                label,
                gap.size,
                1000 * float(gap.mean()),
                float(gap.std() / gap.mean()),
                100 * float(np.mean(gap < 0.0005)),
                float(test.statistic),
                float(test.pvalue),
            ]
        )
    two = stats.ks_2samp(gaps["intended"], gaps["actual (sent_ns)"])
    rows.append(["actual vs intended", "", "", "", "", float(two.statistic), float(two.pvalue)])
    lag_ms = (times["sent_ns"] - times["intended_ns"]) / 1e6
    lag = (
        f"send lag (sent - intended): p50 {np.percentile(lag_ms, 50):.2f} ms, "
        f"p99 {np.percentile(lag_ms, 99):.2f} ms, max {lag_ms.max():.2f} ms; "
        f"{100 * np.mean(lag_ms > 1):.1f} % of sends more than 1 ms late"
    )
    return rows, lag


# -- report ----------------------------------------------------------------------------------
def runs_table(runs: list[Run]) -> str:
    headers = ["condition", "rate", "round", "contender", "expected", "appended", "short %"]
    headers += ["broker p50/p99/max %", "producer p50/p99/max %", "drift s", "lag p99/max ms"]
    headers += ["CPU µs/msg", "load1", "others cores"]
    rows = [
        [
            r.condition,
            f"{r.rate:g}",
            r.round,
            r.contender,
            r.expected,
            r.appended,
            r.shortfall,
            "/".join(f"{v:.2g}" for v in r.broker),
            "/".join(f"{v:.2g}" for v in r.producer),
            r.drift_s,
            f"{r.lag_p99_ms:.3g}/{r.lag_max_ms:.3g}",
            r.cpu_us,
            r.load1,
            r.others,
        ]
        for r in runs
    ]
    return table(headers, rows)


def summary_table(runs: list[Run]) -> str:
    headers = ["condition", "rate", "contender", "broker p50 err %", "broker p99 err %"]
    headers += ["broker max err %", "producer p99 err %", "shortfall %", "drift s", "CPU µs/msg"]
    headers += ["load1", "others cores"]
    rows = []
    keys = sorted({(r.condition, r.rate, r.contender) for r in runs}, key=lambda k: (k[0], k[1]))
    for condition, rate, who in keys:
        mine = [r for r in runs if (r.condition, r.rate, r.contender) == (condition, rate, who)]
        rows.append(
            [
                condition,
                f"{rate:g}",
                who,
                spread([r.broker[0] for r in mine], "{:.2f}"),
                spread([r.broker[1] for r in mine], "{:.2f}"),
                spread([r.broker[2] for r in mine], "{:.2f}"),
                spread([r.producer[1] for r in mine], "{:.2f}"),
                spread([r.shortfall for r in mine], "{:.2f}"),
                spread([r.drift_s for r in mine], "{:+.3f}"),
                spread([r.cpu_us for r in mine], "{:.0f}"),
                spread([r.load1 for r in mine], "{:.1f}"),
                spread([r.others for r in mine], "{:.2f}"),
            ]
        )
    return table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conditions", nargs="+", default=["idle", "hog"])
    parser.add_argument("--hog", type=int, default=1, help="busy-loop processes under 'hog'")
    parser.add_argument("--contenders", nargs="+", default=CONTENDERS, choices=CONTENDERS)
    parser.add_argument("--poisson-rate", type=float, default=200.0)
    parser.add_argument("--poisson-seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    args = parser.parse_args(argv)
    args.size = (args.width, args.height)
    runs: list[Run] = []
    with isolated():
        base = make_spec(
            "bench-rate-accuracy",
            broker={"partitions": 1},
            monitoring={"scrape_interval": 1},
            source={"kind": "synthetic", "width": args.width, "height": args.height},
            load={"profile": "constant", "rate": 1, "duration": 1},
        )
        print(
            f"{machine()}; {args.width}x{args.height} JPEG frames, 1 partition, LogAppendTime "
            f"topics, scrape 1 s; {args.rounds} rounds, order rotating; hog = {args.hog} "
            "busy-loop process(es)"
        )
        with LocalStack(base, "rate-accuracy") as stack:
            for condition in args.conditions:
                with hog(args.hog) if condition == "hog" else contextlib.nullcontext():
                    for rnd in range(1, args.rounds + 1):
                        for rate in args.rates:
                            shift = (rnd - 1) % len(args.contenders)
                            for who in args.contenders[shift:] + args.contenders[:shift]:
                                run = one_run(stack, base, args, (condition, rate, rnd), who)
                                runs.append(run)
                                print(
                                    f"  {condition} {rate:g}/s round {rnd} {who}: broker p99 "
                                    f"{run.broker[1]:.2f} %, short {run.shortfall:.2f} %, "
                                    f"drift {run.drift_s:+.3f} s, load1 {run.load1:.1f}",
                                    flush=True,
                                )
            poisson_rows: list[list] = []
            if args.poisson_seconds > 0:
                poisson_rows, poisson_lag = poisson(
                    stack, base, args.poisson_rate, args.poisson_seconds
                )
    print()
    print(runs_table(runs))
    print()
    print(
        f"Constant rates, {args.seconds:g} s each: per-second error = |achieved - rate| / rate, "
        "first and last second left out; median [min..max] over the rounds"
    )
    print(summary_table(runs))
    if poisson_rows:
        print()
        print(
            f"Poisson, mean {args.poisson_rate:g}/s for {args.poisson_seconds:g} s, idle: "
            f"inter-arrival times against Exp(mean {1000 / args.poisson_rate:g} ms)"
        )
        headers = ["inter-arrivals", "n", "mean ms", "CV", "< 0.5 ms %", "KS D", "KS p-value"]
        print(table(headers, poisson_rows))
        print(poisson_lag)
    print()
    ours = [r for r in runs if r.contender == SCALELAB and r.condition == "idle"]
    if ours:
        worst = max(ours, key=lambda r: r.broker[1])
        lost = [r for r in runs if r.contender == SCALELAB and r.appended != r.expected]
        print(
            verdict(
                worst.broker[1] <= GOAL_P99_ERROR_PERCENT and not lost,
                f"scalelab, idle condition, worst p99 per-second error at the broker "
                f"{worst.broker[1]:.2f} % at {worst.rate:g} msg/s (goal ≤ "
                f"{GOAL_P99_ERROR_PERCENT:g} %); every scheduled message appended in every "
                f"run: {'yes' if not lost else 'no'}",
            )
        )


if __name__ == "__main__":
    main()
