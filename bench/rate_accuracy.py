"""Rate accuracy of the load generator: achieved against target, from the messages themselves.

One local stack (broker, Prometheus scraping every second, node exporter);
for each constant rate (default 20, 100, 500, 2000 msg/s of 160x120 synthetic
JPEG frames, 15 s each) the real producer component runs as ``scalelab run``
starts it, into its own topic. Afterwards the topic is read back and the
``sent_ns`` header of every message gives its actual send time; per second of
the schedule (from the producer's ``start_ns``) the count is compared with the
number of intended sends in that second. The first and last second are left
out (start-up and the partial tail); the table shows the p50/p99/max absolute
error of the remaining seconds in percent, the first second's error apart,
and the schedule lag (sent - intended).

Then a Poisson profile (mean 200/s, 20 s): the inter-arrival times of the
intended and of the actual send times against the exponential distribution
with the same mean (scipy.stats.kstest), and the two samples against each
other (ks_2samp), to show how much the send path distorts the process.

Goal: p99 per-second error ≤ 2 % at every rate.
Run: ``.venv/bin/python bench/rate_accuracy.py [--rates 20 100 500 2000] [--seconds 15]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from scipy import stats

from _common import (
    LocalStack,
    isolated,
    machine,
    make_spec,
    read_send_times,
    run_producer,
    table,
    verdict,
)
from scalelab.run import kafka_ops
from scalelab.spec.models import ExperimentSpec

GOAL_P99_ERROR_PERCENT = 2.0


@dataclass
class RateResult:
    rate: float
    scheduled: int
    received: int
    seconds: int
    p50: float
    p99: float
    max: float
    first: float
    lag_p50_ms: float
    lag_p99_ms: float
    json_mismatch: int  # seconds where producer.json's per_second disagrees with the headers


def spec_for(base: ExperimentSpec, topic: str, load: dict[str, object]) -> ExperimentSpec:
    data = base.model_dump(mode="json")
    data["broker"]["input_topic"] = topic
    data["load"] = load
    return ExperimentSpec.model_validate(data)


def produce(stack: LocalStack, spec: ExperimentSpec, tag: str) -> tuple[dict, dict]:
    admin = kafka_ops.admin(stack.bootstrap)
    kafka_ops.create_topics(admin, spec.broker, spec.broker.partitions)
    run = run_producer(stack, spec, tag)
    times = read_send_times(stack.bootstrap, spec.broker.input_topic)
    return run.report, times


def constant_rate(
    stack: LocalStack, base: ExperimentSpec, rate: float, seconds: float
) -> RateResult:
    tag = f"constant-{rate:g}"
    load = {"profile": "constant", "rate": rate, "duration": seconds}
    report, times = produce(stack, spec_for(base, f"bench.rate.{rate:g}", load), tag)
    start = int(report["start_ns"])
    n_bins = int(round(seconds))
    sent_bin = (times["sent_ns"] - start) // 1_000_000_000
    intended_bin = (times["intended_ns"] - start) // 1_000_000_000
    achieved = np.bincount(np.clip(sent_bin, 0, n_bins), minlength=n_bins + 1)[:n_bins]
    target = np.bincount(np.clip(intended_bin, 0, n_bins), minlength=n_bins + 1)[:n_bins]
    errors = 100 * np.abs(achieved - target) / np.maximum(target, 1)
    inner = errors[1:-1]
    lag_ms = (times["sent_ns"] - times["intended_ns"]) / 1e6
    per_second = report["per_second"][:n_bins]
    mismatch = sum(1 for a, b in zip(per_second, achieved.tolist(), strict=False) if a != b)
    return RateResult(
        rate=rate,
        scheduled=int(report["scheduled"]),
        received=int(times["seq"].size),
        seconds=int(inner.size),
        p50=float(np.percentile(inner, 50)),
        p99=float(np.percentile(inner, 99)),
        max=float(inner.max()),
        first=float(errors[0]),
        lag_p50_ms=float(np.percentile(lag_ms, 50)),
        lag_p99_ms=float(np.percentile(lag_ms, 99)),
        json_mismatch=mismatch,
    )


def poisson(
    stack: LocalStack, base: ExperimentSpec, rate: float, seconds: float
) -> tuple[list[list], str]:
    load = {"profile": "poisson", "rate": rate, "duration": seconds, "seed": 1}
    _, times = produce(stack, spec_for(base, "bench.rate.poisson", load), "poisson")
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 100, 500, 2000])
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each rate")
    parser.add_argument("--poisson-rate", type=float, default=200.0)
    parser.add_argument("--poisson-seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    args = parser.parse_args(argv)
    with isolated():
        base = make_spec(
            "bench-rate-accuracy",
            broker={"partitions": 1},
            monitoring={"scrape_interval": 1},
            source={"kind": "synthetic", "width": args.width, "height": args.height},
            load={"profile": "constant", "rate": 1, "duration": 1},
        )
        print(f"{machine()}; {args.width}x{args.height} JPEG frames, 1 partition, scrape 1 s")
        with LocalStack(base, "rate-accuracy") as stack:
            results = []
            for rate in args.rates:
                results.append(constant_rate(stack, base, rate, args.seconds))
                print(f"  {rate:g} msg/s done", flush=True)
            poisson_rows, poisson_lag = poisson(
                stack, base, args.poisson_rate, args.poisson_seconds
            )
    print()
    print(f"Constant rates, {args.seconds:g} s each; error = |achieved - target| / target per")
    print("second of the schedule, first and last second left out (first shown apart)")
    headers = ["target msg/s", "scheduled", "received", "seconds", "p50 err %", "p99 err %"]
    headers += ["max err %", "1st s err %", "lag p50 ms", "lag p99 ms", "json≠headers s"]
    rows = [
        [
            f"{r.rate:g}",
            r.scheduled,
            r.received,
            r.seconds,
            r.p50,
            r.p99,
            r.max,
            r.first,
            r.lag_p50_ms,
            r.lag_p99_ms,
            r.json_mismatch,
        ]
        for r in results
    ]
    print(table(headers, rows))
    print()
    print(
        f"Poisson, mean {args.poisson_rate:g}/s for {args.poisson_seconds:g} s: inter-arrival "
        f"times against Exp(mean {1000 / args.poisson_rate:g} ms)"
    )
    print(
        table(
            ["inter-arrivals", "n", "mean ms", "CV", "< 0.5 ms %", "KS D", "KS p-value"],
            poisson_rows,
        )
    )
    print(poisson_lag)
    print()
    worst = max(results, key=lambda r: r.p99)
    lost = [r for r in results if r.received != r.scheduled]
    ok = worst.p99 <= GOAL_P99_ERROR_PERCENT and not lost
    print(
        verdict(
            ok,
            f"worst p99 per-second rate error {worst.p99:.2f} % at {worst.rate:g} msg/s "
            f"(goal ≤ {GOAL_P99_ERROR_PERCENT:g} %); every scheduled message received: "
            f"{'yes' if not lost else 'no'}; Poisson actual-send KS p = {poisson_rows[1][6]:.3g}",
        )
    )


if __name__ == "__main__":
    main()
