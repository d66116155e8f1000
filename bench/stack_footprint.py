"""Footprint of the idle local stack: start-up time, memory and CPU (issue 2's figures).

Each repetition, with its own state and run directories:

1. ``scalelab up SPEC`` (the CLI as a subprocess): its wall clock until it
   returns, and the ``setup`` phase window from the run's ``run.json``;
2. idle ``--settle`` seconds (default 60: the broker's start-up tail, JIT
   and the first log segment work, is still going 20-50 s after ``up``), whose
   CPU of broker + Prometheus + node exporter is reported apart ("tail"), then
   the resident memory (RSS, the process and its descendants) of the broker
   and of Prometheus, pids from ``$SCALELAB_HOME/pids/*.json``;
3. over the next ``--window`` seconds (default 30) of idling, the CPU seconds
   (user + system, with descendants) of broker + Prometheus + node exporter,
   as a percentage of one core, at the spec's scrape interval (1 s in the
   quickstart), with the 1-minute load average and the cores everything else
   on the machine used meanwhile;
4. ``scalelab down`` (also when anything above fails).

Then (unless ``--no-diagnose``) where the broker's idle CPU and the setup
time go, on stacks started in this process: the broker's CPU per scrape of its
JMX exporter endpoint with the shipped rules
(``src/scalelab/platform/local/kafka-jmx.yaml``), with the same rules plus
``cache: true`` and an ``includeObjectNames`` list, with BrokerTopicMetrics
only, and with no MBeans at all (the exporter's JVM metrics alone) -- rules
swapped in for this process only, ``src/`` is not changed; the broker's CPU at
a 1 s scrape interval (shipped and suggested rules) and with Prometheus
stopped; and the seconds each step of ``LocalPlatform.start_infrastructure``
takes.

Goals: ready in < 20 s, idle CPU < 5 % of one core.
Run: ``.venv/bin/python bench/stack_footprint.py [--repeat 3] [--no-diagnose] [SPEC]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx

import scalelab.platform.local.kafka as kafka_platform
from _common import (
    ROOT,
    SCALELAB_CLI,
    LocalStack,
    busy_cpu_s,
    cpu_seconds,
    isolated,
    leftovers,
    machine,
    make_spec,
    median,
    rss_bytes,
    table,
    verdict,
)

GOAL_READY_S = 20.0
GOAL_CPU_PERCENT = 5.0
COMPONENTS = ("broker", "prometheus", "node-exporter")
SUGGESTED_INCLUDE = (
    "kafka.server:type=BrokerTopicMetrics,*",
    "kafka.server:type=ReplicaManager,*",
    "kafka.controller:type=KafkaController,*",
    "kafka.server:type=KafkaRequestHandlerPool,*",
    "kafka.network:type=SocketServer,*",
)


@dataclass
class Footprint:
    up_wall_s: float
    setup_s: float
    rss_mb: dict[str, float]
    cpu_percent: dict[str, float]
    tail_percent: float = float("nan")  # the three together over the settle seconds
    load1: float = float("nan")  # 1-minute load average when the window began
    others_cores: float = float("nan")  # cores everything else used during the window

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_percent.values())


def measure_once(spec: Path, settle: float, window: float) -> Footprint:
    home = Path(os.environ["SCALELAB_HOME"])
    try:
        started = time.perf_counter()
        up = subprocess.run(
            [SCALELAB_CLI, "up", str(spec)], capture_output=True, text=True, timeout=180
        )
        up_wall = time.perf_counter() - started
        if up.returncode != 0:
            raise RuntimeError(f"scalelab up failed:\n{up.stdout}\n{up.stderr}")
        stack = json.loads((home / "stack.json").read_text())
        setup_s = setup_seconds(Path(stack["run_dir"]) / "run.json")
        pids = {
            name: int(json.loads((home / "pids" / f"{name}.json").read_text())["pid"])
            for name in COMPONENTS
            if (home / "pids" / f"{name}.json").exists()
        }
        tail0, t_tail = sum(cpu_seconds(pid) for pid in pids.values()), time.monotonic()
        time.sleep(settle)
        tail = sum(cpu_seconds(pid) for pid in pids.values()) - tail0
        tail_percent = 100 * tail / (time.monotonic() - t_tail)
        rss = {name: rss_bytes(pid) / 2**20 for name, pid in pids.items()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        load1, busy0, own0 = os.getloadavg()[0], busy_cpu_s(), time.process_time()
        t0 = time.monotonic()
        time.sleep(window)
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        elapsed = time.monotonic() - t0
        used = sum(after.values()) - sum(before.values()) + time.process_time() - own0
        others = max(0.0, busy_cpu_s() - busy0 - used) / elapsed
        cpu = {name: 100 * (after[name] - before[name]) / elapsed for name in pids}
        return Footprint(up_wall, setup_s, rss, cpu, tail_percent, load1, others)
    finally:
        down = subprocess.run([SCALELAB_CLI, "down"], capture_output=True, text=True, timeout=120)
        if down.returncode != 0:
            subprocess.run([SCALELAB_CLI, "reset"], capture_output=True, text=True, timeout=120)


def setup_seconds(run_json: Path) -> float:
    record = json.loads(run_json.read_text())
    for phase in record["phases"]:
        if phase["name"] == "setup" and phase.get("end"):
            start = datetime.fromisoformat(phase["start"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(phase["end"].replace("Z", "+00:00"))
            return (end - start).total_seconds()
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "examples" / "quickstart.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="idle seconds after `up` before sampling (the start-up tail, reported apart)",
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds of idle CPU counted")
    parser.add_argument("--no-diagnose", dest="diagnose", action="store_false")
    args = parser.parse_args(argv)
    with isolated() as dirs:
        print(f"{machine()}; spec {args.spec}; settle {args.settle:g} s, window {args.window:g} s")
        results = []
        for index in range(args.repeat):
            result = measure_once(Path(args.spec), args.settle, args.window)
            results.append(result)
            print(
                f"  run {index + 1}: up {result.up_wall_s:.1f} s, setup {result.setup_s:.1f} s, "
                f"idle CPU {result.cpu_total:.2f} % of a core",
                flush=True,
            )
        left = leftovers([dirs["SCALELAB_HOME"], dirs["SCALELAB_RUNS"]])
        diagnosis = diagnose_broker() if args.diagnose else ""
    print()
    print(report(results))
    up = median([r.up_wall_s for r in results])
    cpu = median([r.cpu_total for r in results])
    ok = up < GOAL_READY_S and cpu < GOAL_CPU_PERCENT
    print(
        verdict(
            ok,
            f"median `scalelab up` {up:.1f} s (goal < {GOAL_READY_S:g} s), idle CPU of broker + "
            f"Prometheus + node exporter {cpu:.2f} % of one core (goal < {GOAL_CPU_PERCENT:g} %)",
        )
    )
    print(f"processes left after `scalelab down`: {len(left)}")
    if diagnosis:
        print()
        print(diagnosis)


def suggested_rules(shipped: str, include: tuple[str, ...] = SUGGESTED_INCLUDE) -> str:
    """The shipped rules with `cache: true` on every rule and an includeObjectNames list."""
    cached = shipped.replace("    type: COUNTER\n", "    type: COUNTER\n    cache: true\n")
    cached = cached.replace("    type: GAUGE\n", "    type: GAUGE\n    cache: true\n")
    names = "".join(f'  - "{name}"\n' for name in include)
    return cached.replace("\nrules:\n", f"\nincludeObjectNames:\n{names}rules:\n", 1)


def diagnose_broker(window: float = 20.0) -> str:
    """Broker CPU per JMX scrape and at a 1 s scrape interval: shipped vs other rules."""
    shipped_path = kafka_platform.JMX_RULES
    shipped = shipped_path.read_text()
    rules_dir = Path(tempfile.mkdtemp(prefix="bench-jmx-"))
    variants = [
        ("shipped rules", shipped),
        ("suggested rules", suggested_rules(shipped)),
        ("BrokerTopicMetrics only", suggested_rules(shipped, (SUGGESTED_INCLUDE[0],))),
        ("no MBeans (JVM metrics only)", suggested_rules(shipped, ("none.such:type=None",))),
    ]
    spec = make_spec("bench-footprint", load={"profile": "constant", "rate": 1, "duration": 1})
    rows = []
    quiet = float("nan")
    try:
        for index, (label, text) in enumerate(variants):
            path = shipped_path if index == 0 else rules_dir / f"kafka-jmx-{index}.yaml"
            if index:
                path.write_text(text)
            kafka_platform.JMX_RULES = path
            stack = LocalStack(spec, "footprint-jmx")
            if index == 0:
                steps = time_setup_steps(stack)
            with stack:
                kafka_platform.format_storage = format_storage  # time the first stack only
                broker = stack.platform.processes["broker"].pid
                url = f"http://127.0.0.1:{stack.platform.targets['broker'][0]}/metrics"
                time.sleep(10)
                text = httpx.get(url, timeout=30).text
                series = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
                kafka_series = sum(1 for ln in series if ln.startswith("kafka_"))
                c0, t0 = cpu_seconds(broker), time.perf_counter()
                for _ in range(20):
                    httpx.get(url, timeout=30)
                per_scrape_ms = 1000 * (cpu_seconds(broker) - c0) / 20
                wall_ms = 1000 * (time.perf_counter() - t0) / 20
                scraped = float("nan")
                if index < 2:  # measured at a 1 s scrape interval
                    c0, t0 = cpu_seconds(broker), time.monotonic()
                    time.sleep(window)
                    scraped = 100 * (cpu_seconds(broker) - c0) / (time.monotonic() - t0)
                if index == 0:
                    stack.platform.stop_component("prometheus")
                    time.sleep(2)
                    c0, t0 = cpu_seconds(broker), time.monotonic()
                    time.sleep(window)
                    quiet = 100 * (cpu_seconds(broker) - c0) / (time.monotonic() - t0)
                row = [label, len(series), kafka_series, per_scrape_ms, wall_ms, scraped]
                rows.append(row)
    finally:
        kafka_platform.JMX_RULES = shipped_path
        kafka_platform.format_storage = format_storage
    for row in rows:
        row.append(quiet + cast(float, row[3]) / 10)  # ms of CPU per 1000 ms → % of a core
    headers = ["broker JMX exporter rules", "series", "kafka_ series", "CPU ms/scrape"]
    headers += ["ms/scrape", "broker CPU % at 1 s (measured)", "broker CPU % at 1 s (estimate)"]
    lines = [
        f"Where the broker's idle CPU goes (stacks started in this process, {window:g} s windows)",
        table(headers, rows),
        f"broker CPU with no scrapes at all (Prometheus stopped): {quiet:.2f} % of a core; "
        "estimate = that + CPU ms/scrape / 10",
        "suggested rules = shipped + `cache: true` on every rule + includeObjectNames "
        f"{list(SUGGESTED_INCLUDE)}; the rules files are in {rules_dir}",
        "",
        "Where the setup time goes (LocalPlatform.start_infrastructure, shipped-rules stack)",
        table(["step", "seconds"], [[name, steps.get(name, float("nan"))] for name in STEPS]),
    ]
    return "\n".join(lines)


format_storage = kafka_platform.format_storage


def time_setup_steps(stack: LocalStack) -> dict[str, float]:
    """Wrap the platform's start-up steps (on this instance only) to time each one."""
    steps: dict[str, float] = {}

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                steps[label] = steps.get(label, 0.0) + time.perf_counter() - started

        return wrapper

    kafka_platform.format_storage = timed(STEPS[2], format_storage)
    for label, name in zip(STEPS, SETUP_METHODS, strict=True):
        if name:
            setattr(stack.platform, name, timed(label, getattr(stack.platform, name)))
    return steps


STEPS = (
    "start node exporter",
    "start broker (config, format, exec)",
    "  of which: format KRaft storage (java)",
    "start Prometheus until ready",
    "wait broker: port open + metadata",
    "wait until Prometheus scraped every target",
    "start_infrastructure (total)",
)
SETUP_METHODS = (
    "_start_node_exporter",
    "_start_broker",
    "",
    "_start_prometheus",
    "_wait_broker",
    "wait_scraped",
    "start_infrastructure",
)


def report(results: list[Footprint]) -> str:
    headers = ["run", "up wall s", "setup s", "broker RSS MB", "prom RSS MB", "nodeexp RSS MB"]
    headers += ["broker CPU %", "prom CPU %", "nodeexp CPU %", "total CPU %"]
    headers += ["tail CPU % (settle)", "load1", "others cores"]

    def row(label: str, values: list[float]) -> list[object]:
        return [label, *values]

    def values(r: Footprint) -> list[float]:
        return [
            r.up_wall_s,
            r.setup_s,
            r.rss_mb.get("broker", float("nan")),
            r.rss_mb.get("prometheus", float("nan")),
            r.rss_mb.get("node-exporter", float("nan")),
            r.cpu_percent.get("broker", float("nan")),
            r.cpu_percent.get("prometheus", float("nan")),
            r.cpu_percent.get("node-exporter", float("nan")),
            r.cpu_total,
            r.tail_percent,
            r.load1,
            r.others_cores,
        ]

    rows = [row(str(i + 1), values(r)) for i, r in enumerate(results)]
    columns = list(zip(*(values(r) for r in results), strict=True))
    rows.append(row("median", [median(list(c)) for c in columns]))
    return table(headers, rows)


if __name__ == "__main__":
    main()
