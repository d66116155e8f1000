"""A synthetic run directory in the exact on-disk formats, for tests and demos of the analysis.

Writes run.json, spec.yaml, producer.json, qos.parquet (QOS_SCHEMA),
summary.json (through `summary.summarise`, as a real run does) and
metrics.parquet (the export's long format). Knobs make a run that should be
INVALID in one known way: a rate off target, a growing consumer lag, a
scrape gap, broken accounting, messages that never completed, a busy host, a
step load past the system's capacity; or add duplicates and a killed worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ruamel.yaml import YAML

from scalelab.analysis.summary import summarise
from scalelab.components.tracker import QOS_SCHEMA
from scalelab.export.parquet import SCHEMA, labels_json
from scalelab.run.resources import host_share

T0_NS = 1_790_000_000 * 10**9
COMPONENTS = ("broker", "producer", "tracker")
PHASES = ("warmup", "load", "cooldown")


@dataclass
class Synthetic:
    run_id: str = "20260913T100000Z-synthetic-0a1b2c"
    rate: float = 10.0
    achieved_ratio: float = 1.0
    warmup_s: int = 5
    load_s: int = 30
    cooldown_s: int = 3
    workers: int = 2
    scrape_s: float = 1.0
    lag_growth: float = 0.0
    """Messages per second the consumer lag grows by during the load phase."""
    gap: tuple[float, float] | None = None
    """Seconds after the load start during which one series was not scraped."""
    rapl: bool = False
    status: str = "succeeded"
    lost: int = 0
    slo: dict[str, Any] = field(default_factory=lambda: {"latency_p99": 1.0})
    seed: int = 0
    steps: list[tuple[float, float]] | None = None
    """A step profile instead of a constant rate: (rate, seconds) per step, warmup included."""
    capacity: float | None = None
    """Messages per second the system completes at most (one queue); None: no queueing."""
    duplicates: int = 0
    """Load-phase messages processed a second time, 2 s later, by another worker."""
    not_completed: int = 0
    """The last load-phase messages that never completed (still queued at the end)."""
    foreign_cpu: float | None = None
    """Share of the host's busy CPU not used by the run (summary.json's `cpu_host`)."""
    kill: tuple[float, int, float] | None = None
    """(seconds since traffic started, worker index, seconds until another worker took over)."""
    seq_keys: bool = True
    """producer.json carries load_seq_start/load_seq_end and load_sent."""

    def at(self, seconds: float) -> int:
        """Epoch ns of a moment in seconds since traffic started."""
        return T0_NS + int(seconds * 1e9)

    @property
    def end_s(self) -> float:
        return self.warmup_s + self.load_s + self.cooldown_s

    @property
    def sent_rate(self) -> float:
        return float(int(self.rate * self.achieved_ratio))

    def offsets(self) -> np.ndarray:
        """Intended send offsets (seconds since traffic started) of every message."""
        if self.steps is None:
            rate = max(self.sent_rate, 1.0)
            return np.arange(int(self.sent_rate * (self.warmup_s + self.load_s))) / rate
        parts, start = [], 0.0
        for rate, seconds in self.steps:
            parts.append(start + np.arange(int(rate * seconds)) / rate)
            start += seconds
        return np.concatenate(parts)


def write_run(directory: Path, run: Synthetic | None = None) -> Path:
    """Write a complete run into `directory` and return it."""
    run = run or Synthetic()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(run.seed)
    _write_record(directory, run)
    _write_spec(directory, run)
    offsets = run.offsets()
    (directory / "producer.json").write_text(json.dumps(_producer(run, offsets)))
    qos = _qos(run, offsets, rng)
    pq.write_table(qos, directory / "qos.parquet")
    window = (run.at(run.warmup_s), run.at(run.warmup_s + run.load_s))
    extras = _extras(run, offsets.size, qos)
    summary = summarise(directory, window, run.rate, extras)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    pq.write_table(_metrics(run, rng), directory / "metrics.parquet")
    return directory


def _producer(run: Synthetic, offsets: np.ndarray) -> dict[str, Any]:
    per_second = np.bincount(
        offsets.astype(np.int64), minlength=int(np.ceil(run.warmup_s + run.load_s))
    )
    out: dict[str, Any] = {"start_ns": T0_NS, "per_second": per_second.tolist()}
    if run.seq_keys:
        start, end = np.searchsorted(offsets, [run.warmup_s, run.warmup_s + run.load_s])
        out.update(load_seq_start=int(start), load_seq_end=int(end), load_sent=int(end - start))
    return out


def _events(run: Synthetic) -> list[dict[str, Any]]:
    if run.kill is None:
        return []
    at, worker, _ = run.kill
    name = f"worker-{worker}"
    return [{"time": _rfc(run.at(at)), "kind": "kill-worker",
             "detail": f"SIGKILL {name} at {at:.1f} s", "component": name}]  # fmt: skip


def _write_record(directory: Path, run: Synthetic) -> None:
    start, phases = 0.0, []
    for name, length in zip(PHASES, (run.warmup_s, run.load_s, run.cooldown_s), strict=True):
        phases.append(
            {"name": name, "start": _rfc(run.at(start)), "end": _rfc(run.at(start + length))}
        )
        start += length
    record = {
        "id": run.run_id, "name": "synthetic", "status": run.status,
        "started": phases[0]["start"], "ended": phases[-1]["end"], "phases": phases,
        "platform": "local", "versions": {"scalelab": "0.1.0", "kafka": "4.2.0"},
        "host": {"hostname": "synthetic", "cores": 2}, "errors": [], "warnings": [],
        "events": _events(run), "results": {},
    }  # fmt: skip
    (directory / "run.json").write_text(json.dumps(record, indent=2))


def _write_spec(directory: Path, run: Synthetic) -> None:
    load: dict[str, Any] = {"profile": "constant", "rate": run.rate}
    if run.steps is not None:
        load = {"profile": "step", "steps": [{"rate": r, "duration": d} for r, d in run.steps]}
    spec = {
        "name": "synthetic", "description": "A synthetic run.",
        "monitoring": {"scrape_interval": run.scrape_s},
        "workload": {"kind": "yolo", "workers": run.workers, "batch_size": 1},
        "load": {**load, "warmup": float(run.warmup_s),
                 "duration": float(run.warmup_s + run.load_s)},
        "slo": {"min_load_duration": 0, "max_rate_error": 0.02, **run.slo},
    }  # fmt: skip
    with (directory / "spec.yaml").open("w") as out:
        YAML(typ="safe").dump(spec, out)


def _qos(run: Synthetic, offsets: np.ndarray, rng: np.random.Generator) -> pa.Table:
    n = offsets.size
    intended = T0_NS + (offsets * 1e9).astype(np.int64)
    stages = {s: rng.gamma(4.0, scale, n) for s, scale in _STAGE_SCALES.items()}
    service = np.sum(list(stages.values()), axis=0)
    done = intended + (service * 1e9).astype(np.int64)
    if run.capacity is not None:
        done = _queued(intended, 1.0 / run.capacity)
        stages["queue"] = np.maximum(0.0, (done - intended) / 1e9 - service + stages["queue"])
    worker = np.array([f"worker-{i % run.workers}" for i in range(n)])
    partition = (np.arange(n) % run.workers).astype(np.int32)
    if run.kill is not None:
        worker, done = _taken_over(run, worker, done)
    columns: dict[str, Any] = {
        "id": np.array([f"{run.run_id}:{i}" for i in range(n)]), "run_id": np.full(n, run.run_id),
        "seq": np.arange(n), "source": np.full(n, "synthetic"), "worker": worker,
        "model": np.full(n, "yolov8n"), "batch_size": np.ones(n, np.int32),
        "partition": partition, "offset": np.arange(n),
        "intended_ns": intended, "sent_ns": intended + 200_000, "consume_ns": intended + 5_000_000,
        "done_ns": done, "tracked_ns": done + 1_000_000, "latency_s": (done - intended) / 1e9,
        "detections": np.zeros(n, np.int32), **{f"{s}_s": v for s, v in stages.items()},
    }  # fmt: skip
    keep = _completed(run, offsets)
    columns = {name: np.asarray(values)[keep] for name, values in columns.items()}
    columns = _with_duplicates(run, columns, offsets[keep])
    return pa.table(columns, schema=QOS_SCHEMA)


def _queued(intended: np.ndarray, service_ns_s: float) -> np.ndarray:
    """One server completing a message every `service_ns_s` seconds, first come first served."""
    done = np.empty_like(intended)
    free, step = 0, int(service_ns_s * 1e9)
    for i, arrival in enumerate(intended.tolist()):
        free = max(free, arrival) + step
        done[i] = free
    return done


def _taken_over(run: Synthetic, worker: np.ndarray, done: np.ndarray) -> tuple[Any, Any]:
    """After the kill, the killed worker's messages complete on the next worker, later."""
    assert run.kill is not None
    at, index, recovery = run.kill
    kill_ns, victim = run.at(at), f"worker-{index}"
    moved = (worker == victim) & (done >= kill_ns)
    worker = np.where(moved, f"worker-{(index + 1) % run.workers}", worker)
    done = np.where(moved, np.maximum(done, kill_ns + int(recovery * 1e9)), done)
    return worker, done


def _completed(run: Synthetic, offsets: np.ndarray) -> np.ndarray:
    """Every message but the last `not_completed` of the load phase."""
    keep = np.ones(offsets.size, dtype=bool)
    if run.not_completed:
        load = np.flatnonzero((offsets >= run.warmup_s) & (offsets < run.warmup_s + run.load_s))
        keep[load[-run.not_completed :]] = False
    return keep


def _with_duplicates(
    run: Synthetic, columns: dict[str, Any], offsets: np.ndarray
) -> dict[str, Any]:
    """`duplicates` load-phase messages once more, 2 s later, on another worker."""
    if not run.duplicates:
        return columns
    load = np.flatnonzero((offsets >= run.warmup_s + 1) & (offsets < run.warmup_s + run.load_s - 3))
    again = load[:: max(1, load.size // run.duplicates)][: run.duplicates]
    extra = {name: values[again] for name, values in columns.items()}
    extra["done_ns"] = extra["done_ns"] + 2_000_000_000
    extra["tracked_ns"] = extra["tracked_ns"] + 2_000_000_000
    extra["latency_s"] = extra["latency_s"] + 2.0
    extra["worker"] = np.full(again.size, "worker-late")
    return {name: np.concatenate([columns[name], extra[name]]) for name in columns}


_STAGE_SCALES = {"queue": 0.002, "decode": 0.00025, "preprocess": 0.0004, "inference": 0.02,
                 "postprocess": 0.0001}  # fmt: skip


def _extras(run: Synthetic, produced: int, qos: pa.Table) -> dict[str, Any]:
    records = qos.num_rows
    lag = [{"t": t / 2, "lag": _lag(run, t / 2)} for t in range(int(2 * run.end_s))]
    if run.capacity is not None:
        lag = _queue_lag(run, qos)
    processed = produced - run.lost - run.not_completed
    accounting = {"produced": produced, "processed": processed,
                  "processed_records": records, "duplicates": run.duplicates, "dead_lettered": 0,
                  "still_queued": run.not_completed, "lost": run.lost,
                  "ok": run.lost == 0}  # fmt: skip
    cpu = {name: {"cpu_seconds": 0.3 * run.load_s, "cores": 0.3} for name in _components(run)}
    extras: dict[str, Any] = {"accounting": accounting, "cpu": cpu, "consumer_lag": lag}
    if run.foreign_cpu is not None:
        own = sum(c["cpu_seconds"] for c in cpu.values())
        extras["cpu_host"] = host_share(own / (1 - run.foreign_cpu), own, float(run.load_s))
    return extras


def _queue_lag(run: Synthetic, qos: pa.Table) -> list[dict[str, Any]]:
    """Messages sent but not yet done, every half second (what the consumer lag shows)."""
    intended = np.sort(qos.column("intended_ns").to_numpy())
    done = np.sort(qos.column("done_ns").to_numpy())
    out = []
    for t in np.arange(0, run.end_s, 0.5):
        at = run.at(float(t))
        waiting = int(np.searchsorted(intended, at, "right") - np.searchsorted(done, at, "right"))
        out.append({"t": float(t), "lag": max(0, waiting)})
    return out


def _lag(run: Synthetic, t: float) -> int:
    into_load = min(max(0.0, t - run.warmup_s), run.load_s)
    return int(round(run.lag_growth * into_load)) + (int(t * 2) % 2)


def _components(run: Synthetic) -> list[str]:
    return [*COMPONENTS, *(f"worker-{i}" for i in range(run.workers))]


def _metrics(run: Synthetic, rng: np.random.Generator) -> pa.Table:
    times = np.arange(-2, run.end_s + 2, run.scrape_s)
    series: list[tuple[str, dict[str, str], np.ndarray, np.ndarray]] = []
    for index, name in enumerate(_components(run)):
        labels = {"component": name, "instance": f"127.0.0.1:{9100 + index}", "job": name}
        cores = 0.3 + 0.05 * rng.standard_normal(times.size).clip(-3, 3)
        series.append(("process_cpu_seconds_total", labels, times, np.cumsum(cores * run.scrape_s)))
        series.append(("up", labels, times, np.ones(times.size)))
    for cpu in ("0", "1"):
        for mode, share in (("user", 0.5), ("system", 0.1), ("idle", 0.4)):
            labels = {"cpu": cpu, "mode": mode, "instance": "127.0.0.1:9000", "job": "node"}
            series.append(
                (
                    "node_cpu_seconds_total",
                    labels,
                    times,
                    np.cumsum(np.full(times.size, share * run.scrape_s)),
                )
            )
    series.append(
        (
            "scalelab_producer_target_rate",
            {"component": "producer"},
            times,
            np.full(times.size, run.rate),
        )
    )
    late = times[times >= run.warmup_s]  # as a worker the autoscaler starts mid-run
    for name in _components(run):
        if name != "producer":  # every component importing the producer module exports it at 0
            labels = {"component": name}
            series.append(("scalelab_producer_target_rate", labels, late, np.zeros(late.size)))
    if run.rapl:
        labels = {"index": "0", "path": "/sys/class/powercap/intel-rapl:0"}
        series.append(
            (
                "node_rapl_package_joules_total",
                labels,
                times,
                np.cumsum(np.full(times.size, 10.0 * run.scrape_s)),
            )
        )
    if run.gap:
        name, labels, t, v = series[0]
        keep = ~((t > run.warmup_s + run.gap[0]) & (t < run.warmup_s + run.gap[1]))
        series[0] = (name, labels, t[keep], v[keep])
    return _long_table(series)


def _long_table(series: list[tuple[str, dict[str, str], np.ndarray, np.ndarray]]) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for metric, labels, times, values in series:
        for t, v in zip(times, values, strict=True):
            rows["metric"].append(metric)
            rows["labels"].append(labels_json(metric, labels))
            rows["timestamp"].append(T0_NS + int(t * 1e9))
            rows["value"].append(float(v))
            for name in ("instance", "job", "component", "run_id"):
                rows[name].append(labels.get(name))
    return pa.table(rows, schema=SCHEMA)


def _rfc(epoch_ns: int) -> str:
    seconds, ns = divmod(epoch_ns, 10**9)
    stamp = np.datetime64(seconds, "s").astype(str)
    return f"{stamp}.{ns // 1_000_000:03d}Z"
