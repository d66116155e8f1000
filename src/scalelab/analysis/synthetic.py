"""A synthetic run directory in the exact on-disk formats, for tests and demos of the analysis.

Writes run.json, spec.yaml, producer.json, qos.parquet (QOS_SCHEMA),
summary.json (through `summary.summarise`, as a real run does) and
metrics.parquet (the export's long format). Knobs make a run that should be
INVALID in one known way: a rate off target, a growing consumer lag, a
scrape gap, broken accounting.
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

    def at(self, seconds: float) -> int:
        """Epoch ns of a moment in seconds since traffic started."""
        return T0_NS + int(seconds * 1e9)

    @property
    def end_s(self) -> int:
        return self.warmup_s + self.load_s + self.cooldown_s


def write_run(directory: Path, run: Synthetic | None = None) -> Path:
    """Write a complete run into `directory` and return it."""
    run = run or Synthetic()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(run.seed)
    _write_record(directory, run)
    _write_spec(directory, run)
    sent = int(run.rate * run.achieved_ratio)
    per_second = [sent] * (run.warmup_s + run.load_s)
    (directory / "producer.json").write_text(
        json.dumps({"start_ns": T0_NS, "per_second": per_second})
    )
    pq.write_table(_qos(run, sent, rng), directory / "qos.parquet")
    window = (run.at(run.warmup_s), run.at(run.warmup_s + run.load_s))
    summary = summarise(directory, window, run.rate, _extras(run, sent))
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    pq.write_table(_metrics(run, rng), directory / "metrics.parquet")
    return directory


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
        "events": [], "results": {},
    }  # fmt: skip
    (directory / "run.json").write_text(json.dumps(record, indent=2))


def _write_spec(directory: Path, run: Synthetic) -> None:
    spec = {
        "name": "synthetic", "description": "A synthetic run.",
        "monitoring": {"scrape_interval": run.scrape_s},
        "workload": {"kind": "yolo", "workers": run.workers, "batch_size": 1},
        "load": {"profile": "constant", "rate": run.rate, "warmup": float(run.warmup_s),
                 "duration": float(run.warmup_s + run.load_s)},
        "slo": {"min_load_duration": 0, "max_rate_error": 0.02, **run.slo},
    }  # fmt: skip
    with (directory / "spec.yaml").open("w") as out:
        YAML(typ="safe").dump(spec, out)


def _qos(run: Synthetic, sent: int, rng: np.random.Generator) -> pa.Table:
    seconds = run.warmup_s + run.load_s
    n = sent * seconds
    intended = T0_NS + (np.arange(n) * (1e9 / max(sent, 1))).astype(np.int64)
    stages = {s: rng.gamma(4.0, scale, n) for s, scale in _STAGE_SCALES.items()}
    latency = np.sum(list(stages.values()), axis=0)
    done = intended + (latency * 1e9).astype(np.int64)
    columns: dict[str, Any] = {
        "id": [str(i) for i in range(n)], "run_id": [run.run_id] * n, "seq": np.arange(n),
        "source": ["synthetic"] * n, "worker": [f"worker-{i % run.workers}" for i in range(n)],
        "model": ["yolov8n"] * n, "batch_size": np.ones(n, np.int32),
        "partition": (np.arange(n) % run.workers).astype(np.int32), "offset": np.arange(n),
        "intended_ns": intended, "sent_ns": intended + 200_000, "consume_ns": intended + 5_000_000,
        "done_ns": done, "tracked_ns": done + 1_000_000, "latency_s": latency,
        "detections": np.zeros(n, np.int32), **{f"{s}_s": v for s, v in stages.items()},
    }  # fmt: skip
    return pa.table(columns, schema=QOS_SCHEMA)


_STAGE_SCALES = {"queue": 0.002, "decode": 0.00025, "preprocess": 0.0004, "inference": 0.02,
                 "postprocess": 0.0001}  # fmt: skip


def _extras(run: Synthetic, sent: int) -> dict[str, Any]:
    produced = sent * (run.warmup_s + run.load_s)
    lag = [{"t": t / 2, "lag": _lag(run, t / 2)} for t in range(2 * run.end_s)]
    accounting = {"produced": produced, "processed": produced - run.lost,
                  "processed_records": produced - run.lost, "duplicates": 0, "dead_lettered": 0,
                  "still_queued": 0, "lost": run.lost, "ok": run.lost == 0}  # fmt: skip
    cpu = {name: {"cpu_seconds": 0.3 * run.load_s, "cores": 0.3} for name in _components(run)}
    return {"accounting": accounting, "cpu": cpu, "consumer_lag": lag}


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
