"""A run on disk as data, for notebooks and for the rest of the analysis.

    >>> run = open_run("latest")               # or an id, a prefix, a name, a directory
    >>> run.messages.latency_s.describe()       # datetimes, t_s since load start, phase
    >>> run.rate("process_cpu_seconds_total")   # a counter as per-second rates
    >>> open_runs(["run-a", "run-b"]).groupby("workload.workers").latency_s.quantile(0.99)

`qos` and `metrics` are the files as stored (epoch ns); `messages`, `samples`
and `rate` are the notebook views (see `scalelab.analysis.notebook`).

Every file is read on first use and may be missing: a run that failed early
has empty `qos`/`metrics` frames and an empty `summary`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ruamel.yaml import YAML, YAMLError

from scalelab.analysis.lookup import find_run
from scalelab.analysis.qos_schema import QOS_SCHEMA
from scalelab.analysis.runs import run_ids
from scalelab.export.parquet import SCHEMA as METRICS_SCHEMA

Window = tuple[int, int]
"""A time window as UTC epoch nanoseconds [start, end)."""


@dataclass
class Run:
    """One run directory; each file is read lazily and cached.

    `notes` collects what could not be read (a truncated Parquet file), so a
    report can say why a table is empty.
    """

    dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.record.get("id") or self.dir.name)

    @cached_property
    def record(self) -> dict[str, Any]:
        return read_json(self.dir / "run.json")

    @cached_property
    def summary(self) -> dict[str, Any]:
        return read_json(self.dir / "summary.json")

    @cached_property
    def spec(self) -> dict[str, Any]:
        try:
            tree = YAML(typ="safe").load((self.dir / "spec.yaml").read_text())
        except (OSError, YAMLError):
            return {}
        return tree if isinstance(tree, dict) else {}

    @cached_property
    def params(self) -> dict[str, Any]:
        """The spec flattened to dotted keys (`workload.workers`)."""
        return flatten(self.spec)

    @cached_property
    def qos(self) -> pd.DataFrame:
        return self._parquet("qos.parquet", QOS_SCHEMA)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return self._parquet("metrics.parquet", METRICS_SCHEMA)

    @cached_property
    def messages(self) -> pd.DataFrame:
        """One row per processed message: UTC datetimes, `t_s` since load start, `phase`."""
        from scalelab.analysis.notebook import messages

        return messages(self)

    @cached_property
    def samples(self) -> pd.DataFrame:
        """Every metric sample, with `t_s` since load start; empty label columns left out."""
        from scalelab.analysis.notebook import samples

        return samples(self)

    def rate(self, metric: str, by: str | None = "component") -> pd.DataFrame:
        """A counter as per-second rates over time, one column per `by` label value."""
        from scalelab.analysis.notebook import counter_rates

        return counter_rates(self, metric, by)

    @cached_property
    def phases(self) -> dict[str, Window]:
        """Finished phases by name, as ns windows."""
        out: dict[str, Window] = {}
        for phase in self.record.get("phases", []):
            if phase.get("end") and phase["name"] not in out:
                out[phase["name"]] = (to_ns(phase["start"]), to_ns(phase["end"]))
        return out

    @property
    def load_window(self) -> Window | None:
        return self.phases.get("load")

    @property
    def origin_ns(self) -> int | None:
        """When traffic started (warmup start, else load start): t = 0 of time plots."""
        first = self.phases.get("warmup") or self.phases.get("load")
        return first[0] if first else None

    @property
    def scrape_interval(self) -> float:
        return float(self.params.get("monitoring.scrape_interval") or 1.0)

    def _parquet(self, name: str, schema: pa.Schema) -> pd.DataFrame:
        path = self.dir / name
        if not path.is_file():
            return schema.empty_table().to_pandas()
        try:
            return pq.read_table(path).to_pandas()
        except (OSError, pa.ArrowException) as error:
            self.notes.append(f"{name} unreadable ({error}); treated as empty")
            return schema.empty_table().to_pandas()


def open_run(run: str | Path) -> Run:
    """A run by id (under `scalelab.paths.runs_dir()`) or by directory."""
    return Run(find_run(run))


def open_runs(runs: Iterable[str | Path]) -> pd.DataFrame:
    """`messages` of several runs with their run id and flattened spec parameters.

    Each run's `t_s` counts from its own load start, so runs line up."""
    frames = [_qos_with_params(open_run(run)) for run in runs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def runs_table(runs: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """Headline figures, one row per run (every run on disk when `runs` is None)."""
    chosen = list(runs) if runs is not None else run_ids()
    rows = [headline(open_run(run)) for run in chosen]
    return pd.DataFrame(rows).set_index("run_id") if rows else pd.DataFrame()


def headline(run: Run) -> dict[str, Any]:
    """The figures a comparison shows, from summary.json (None where missing)."""
    summary = run.summary
    rate, latency = summary.get("rate", {}), summary.get("latency_s", {})
    energy, accounting = summary.get("energy", {}), summary.get("accounting", {})
    lags = [sample["lag"] for sample in summary.get("consumer_lag", [])]
    cores = [usage.get("cores", 0.0) for usage in summary.get("cpu", {}).values()]
    return {
        "run_id": run.id,
        "status": run.record.get("status"),
        "verdict": summary.get("verdict", {}).get("result"),
        "target_rate": rate.get("target_rate"),
        "achieved_rate": rate.get("achieved_rate"),
        "throughput": summary.get("throughput"),
        **{f"latency_{k}_s": latency.get(k) for k in ("p50", "p95", "p99", "max")},
        "consumer_lag_max": max(lags) if lags else None,
        "lost": accounting.get("lost"),
        "duplicates": accounting.get("duplicates"),
        "cpu_cores": round(sum(cores), 3) if cores else None,
        "energy_source": energy.get("source"),
        "energy_load_j": energy.get("load", {}).get("joules"),
        "energy_j_per_frame": energy.get("load", {}).get("joules_per_frame"),
    }


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists become JSON text so they compare as values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | Mapping):
            out[name] = json.dumps(value, sort_keys=True, default=str)
        else:
            out[name] = value
    return out


def phase_of(run: Run, times_ns: pd.Series) -> pd.Series:
    """The phase each time falls in (None outside every phase)."""
    labels = pd.Series(None, index=times_ns.index, dtype="object")
    for name, (start, end) in run.phases.items():
        labels[(times_ns >= start) & (times_ns < end) & labels.isna()] = name
    return labels


def to_ns(text: str) -> int:
    """RFC 3339 (with Z) to UTC epoch nanoseconds."""
    return int(pd.Timestamp(text).value)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _qos_with_params(run: Run) -> pd.DataFrame:
    qos = run.messages.copy()
    qos["run_id"] = run.id
    params = pd.DataFrame([run.params] * len(qos), index=qos.index)
    return pd.concat([qos, params.drop(columns=["run_id", "phase"], errors="ignore")], axis=1)
