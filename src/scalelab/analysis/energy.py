"""Energy per phase and per frame: measured where counters exist, else a labelled estimate.

Sources, in order of preference:

1. Kepler (Kubernetes), when metric names are given: joule counters, per
   component where the series carry a component label.
2. RAPL, read by the node exporter (`node_rapl_*_joules_total`): package and
   DRAM domains (core and uncore are inside the package), counter deltas.
3. An ESTIMATE from CPU time with a linear power model (see `CpuPowerModel`).

Every figure is host-wide (the whole machine's energy). Next to it,
`attributed` gives the part attributed to the run's own processes, by their
share of the host's busy CPU seconds during the load phase (`host_cpu.py`),
so a busy neighbour's energy is not billed to the run's frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.dataset import Run, Window
from scalelab.analysis.host_cpu import foreign_cpu
from scalelab.analysis.power_model import CpuPowerModel
from scalelab.analysis.resample import Grid, counter_increase, counter_rate, nan_add
from scalelab.analysis.series import busy_cpu_rows, first_completion_rows, own_metrics
from scalelab.analysis.series import component_cpu as component_cpu_series
from scalelab.analysis.series import host_cpu as host_cpu_series

RAPL_METRICS = ("node_rapl_package_joules_total", "node_rapl_dram_joules_total")


def energy(
    run: Run,
    kepler: Mapping[str, str] | None = None,
    model: CpuPowerModel | None = None,
    component_label: str = "component",
) -> dict[str, Any]:
    """The energy block of summary.json: per phase, the load window per frame, per component."""
    metrics, model = own_metrics(run), model or CpuPowerModel()
    names = tuple(kepler.values()) if kepler else ()
    for source, metric_names in (("kepler", names), ("rapl", RAPL_METRICS)):
        rows = metrics[metrics["metric"].isin(metric_names)] if len(metric_names) else metrics[:0]
        if not rows.empty:
            return attribute(run, _measured(run, source, rows, component_label))
    return attribute(run, _estimated(run, metrics, model))


def attribute(run: Run, block: dict[str, Any]) -> dict[str, Any]:
    """Add `attributed`: the load phase's energy share of the run's own processes."""
    load, host = block.get("load") or {}, foreign_cpu(run)
    if not load or host is None or not host.get("busy_seconds"):
        return block
    share = min(1.0, float(host["run_seconds"]) / float(host["busy_seconds"]))
    joules = load["joules"] * share
    frames = load.get("frames") or 0
    kind = "ESTIMATE" if block.get("estimate") else f"measured ({block.get('source')})"
    block["load"]["scope"] = "host-wide"
    block["attributed"] = {
        "scope": "the run's own processes",
        "share": round(share, 4),
        "joules": round(joules, 3),
        "joules_per_frame": round(joules / frames, 4) if frames else None,
        "basis": f"{kind} host energy × the run's share of busy CPU ({host.get('basis')})",
    }
    block["message"] += f"; {joules:.1f} J attributed to the run's own processes ({share:.0%})"
    return block


def power_series(
    run: Run,
    grid: Grid,
    source: str,
    kepler: Mapping[str, str] | None = None,
    model: CpuPowerModel | None = None,
) -> np.ndarray | None:
    """Watts on the grid: counter rates of the measured source, or the model on busy cores."""
    metrics, model = own_metrics(run), model or CpuPowerModel()
    if source in ("kepler", "rapl"):
        names = tuple(kepler.values()) if source == "kepler" and kepler else RAPL_METRICS
        total = np.full(grid.n, np.nan)
        for _, part in metrics[metrics["metric"].isin(names)].groupby("labels", observed=True):
            rate = counter_rate(_times(part), part["value"].to_numpy(np.float64), grid)
            total = nan_add(total, rate)
        return total
    busy = host_cpu_series(metrics, grid).get("host cpu busy")
    if busy is None:
        per_component = list(component_cpu_series(metrics, grid).values())
        busy = np.nansum(per_component, axis=0) if per_component else None
    if busy is None:
        return None
    return host_cores(run) * model.idle_w_per_core + model.dynamic_w_per_core * busy


def host_cores(run: Run) -> float:
    return float(run.record.get("host", {}).get("cores") or 1)


def load_frames(run: Run) -> int:
    """Frames served in the load phase, each once (summary.json's completed count)."""
    for key in ("completed_in_load", "processed_in_load"):
        if run.summary.get(key) is not None:
            return int(run.summary[key])
    window = run.load_window
    if window is None or run.qos.empty:
        return 0
    done = first_completion_rows(run.qos)["done_ns"]
    return int(((done >= window[0]) & (done < window[1])).sum())


def _measured(run: Run, source: str, rows: pd.DataFrame, label: str) -> dict[str, Any]:
    phases = {name: _phase(*_increase(rows, window), window) for name, window in run.phases.items()}
    out = _block(run, source, False, phases)
    out["basis"] = f"{source} joule counters: " + ", ".join(sorted(rows["metric"].unique()))
    window, owners = run.load_window, label_values(rows, label)
    if window and owners.notna().any():
        per = {
            str(c): _increase(part, window)[0] for c, part in rows.groupby(owners, observed=True)
        }
        out["components"] = {c: {"joules": round(j, 3)} for c, j in per.items()}
        _per_frame(out["components"], load_frames(run))
    return out


def label_values(rows: pd.DataFrame, label: str) -> pd.Series:
    """One label's value per row: its own column when it has one, else from the labels JSON."""
    if label in rows.columns:
        return rows[label].astype("object")
    texts = rows["labels"].astype(str)
    values = {text: json.loads(text).get(label) for text in texts.unique()}
    return texts.map(values)


def _estimated(run: Run, metrics: pd.DataFrame, model: CpuPowerModel) -> dict[str, Any]:
    cores = host_cores(run)
    busy, basis = _busy_rows(metrics)
    phases: dict[str, dict[str, Any]] = {}
    if busy is not None:
        for name, window in run.phases.items():
            cpu, covered = _increase(busy, window)
            phases[name] = _phase(model.joules(cores, covered, cpu), covered, window, cpu)
    elif run.load_window and run.summary.get("cpu"):
        basis = "component CPU from summary.json (load phase only)"
        cpu = sum(u.get("cpu_seconds", 0.0) for u in run.summary["cpu"].values())
        seconds = (run.load_window[1] - run.load_window[0]) / 1e9
        phases["load"] = _phase(model.joules(cores, seconds, cpu), seconds, run.load_window, cpu)
    out = _block(run, "estimate", True, phases)
    out.update(model.describe(cores), basis=basis)
    out["components"] = {
        name: {"cpu_seconds": round(cpu, 3), "joules": round(model.dynamic_w_per_core * cpu, 3)}
        for name, cpu in _component_cpu_seconds(run, metrics).items()
    }
    _per_frame(out["components"], load_frames(run))
    return out


def _block(run: Run, source: str, estimate: bool, phases: dict[str, Any]) -> dict[str, Any]:
    frames = load_frames(run)
    load = dict(phases.get("load", {}))
    if load:
        load["frames"] = frames
        load["joules_per_frame"] = round(load["joules"] / frames, 4) if frames else None
    if not phases:
        message = "no CPU or energy data in any phase: energy unknown"
        return {
            "source": "none",
            "estimate": estimate,
            "phases": {},
            "load": {},
            "components": {},
            "message": message,
        }
    label = "ESTIMATE from CPU time" if estimate else f"measured ({source})"
    message = f"{label}: {load.get('joules', 0):.1f} J in the load phase" if load else label
    return {
        "source": source,
        "estimate": estimate,
        "phases": phases,
        "load": load,
        "components": {},
        "message": message,
    }


def _busy_rows(metrics: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    host = busy_cpu_rows(metrics)
    if not host.empty:
        return host, "host busy CPU from node_cpu_seconds_total (node exporter)"
    node = metrics[metrics["metric"] == "node_cpu_usage_seconds_total"]
    if not node.empty:  # Kubernetes: the kubelet's busy core-seconds of each node
        return node, "node busy CPU from the kubelet (node_cpu_usage_seconds_total)"
    process = metrics[metrics["metric"] == "process_cpu_seconds_total"]
    if not process.empty:
        return process, "sum of component CPU from process_cpu_seconds_total"
    return None, "no CPU data"


def _component_cpu_seconds(run: Run, metrics: pd.DataFrame) -> dict[str, float]:
    rows = _pod_cpu_rows(metrics)
    if rows.empty:
        rows = metrics[metrics["metric"] == "process_cpu_seconds_total"]
    window = run.load_window
    if window and not rows.empty and "component" in rows and rows["component"].notna().any():
        return {
            str(c): _increase(part, window)[0]
            for c, part in rows.groupby("component", observed=True)
        }
    usage = run.summary.get("cpu") or {}
    return {name: float(u.get("cpu_seconds", 0.0)) for name, u in usage.items()}


def _pod_cpu_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Kubernetes: each container's CPU seconds from cAdvisor (the whole container, podwrap
    and JVM included), labelled with its component; the pod-level sums (container "" or
    "POD") are left out so nothing counts twice."""
    rows = metrics[metrics["metric"] == "container_cpu_usage_seconds_total"]
    if rows.empty:
        return rows
    containers = label_values(rows, "container")
    return rows[containers.notna() & ~containers.isin(["", "POD"])]


def _increase(rows: pd.DataFrame, window: Window) -> tuple[float, float]:
    """Summed increase of every series in `rows` over the window, and the seconds covered."""
    total, covered = 0.0, 0.0
    for _, part in rows.groupby("labels", observed=True):
        increase, seconds = counter_increase(
            _times(part), part["value"].to_numpy(np.float64), window
        )
        total, covered = total + increase, max(covered, seconds)
    return total, covered


def _phase(
    joules: float, seconds: float, window: Window, cpu: float | None = None
) -> dict[str, Any]:
    length = (window[1] - window[0]) / 1e9
    out = {
        "seconds": round(seconds, 3),
        "joules": round(joules, 3),
        "mean_watts": round(joules / seconds, 3) if seconds > 0 else None,
        "coverage": round(seconds / length, 3) if length > 0 else None,
    }
    if cpu is not None:
        out["cpu_seconds"] = round(cpu, 3)
    return out


def _per_frame(components: dict[str, dict[str, Any]], frames: int) -> None:
    for block in components.values():
        block["joules_per_frame"] = round(block["joules"] / frames, 5) if frames else None


def _times(rows: pd.DataFrame) -> np.ndarray:
    return rows["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
