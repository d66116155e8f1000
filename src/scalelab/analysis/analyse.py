"""One run's analysis: verdict, energy, time series, correlations and plots, computed once.

`analyse()` computes and draws; `analyse_run()` (called at the end of every
run) also writes the results next to the data and never raises: a step that
fails leaves an explicit empty result and a message in the verdict's notes.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from scalelab.analysis import charts
from scalelab.analysis.correlate import Correlations, correlate
from scalelab.analysis.dataset import Run
from scalelab.analysis.energy import energy, power_series
from scalelab.analysis.fault_windows import time_marks
from scalelab.analysis.plots import Timeline, time_plots
from scalelab.analysis.resample import Grid, resample_metrics
from scalelab.analysis.series import first_completion_rows, key_series, own_metrics, run_grid
from scalelab.analysis.verdict import Verdict, verdict

FOCUS_PREFIXES = (
    "scalelab_",
    "kafka_server_brokertopicmetrics_",
    "process_resident_memory_bytes",
    "node_memory_MemAvailable_bytes",
    "node_rapl_",
    "kepler_",
)
"""Raw series correlated besides the headline ones (the rest is mostly the monitors' own)."""
PLOTS_DIR = "plots"
ESTIMATED_POWER = "an estimate computed from host CPU, so it only mirrors the CPU series"
T = TypeVar("T")


@dataclass
class Analysis:
    run: Run
    verdict: Verdict
    energy: dict[str, Any]
    series: pd.DataFrame
    correlations: Correlations
    plots: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def analyse(run: Run, kepler: Mapping[str, str] | None = None) -> Analysis:
    """Verdict, energy, series, correlations and plots of a run (plots are written)."""
    messages: list[str] = []
    checked = _guard("verdict", lambda: verdict(run), Verdict(False, ["verdict failed"]), messages)
    spent = _guard("energy", lambda: energy(run, kepler), _no_energy(), messages)
    series, related = _over_time(run, spent, kepler, messages)
    result = Analysis(run, checked, spent, series, related, messages=messages)
    result.plots = _guard("plots", lambda: draw(result), {}, messages)
    checked.notes.extend(messages)
    return result


def _over_time(
    run: Run, spent: dict[str, Any], kepler: Mapping[str, str] | None, messages: list[str]
) -> tuple[pd.DataFrame, Correlations]:
    """The key series on the run's grid and their correlations over the load window."""
    grid = run_grid(run)
    if grid is None:
        messages.append("no load phase: no time series, correlations or time plots")
        return pd.DataFrame(), Correlations(0.0, 0, message="no load phase")
    series = _guard(
        "time series", lambda: _series(run, grid, spent, kepler), pd.DataFrame(), messages
    )
    empty = Correlations(grid.step_s, 0, message="no data in the load phase")
    if series.empty:
        return series, empty
    estimate = bool(spent.get("estimate"))
    return series, _guard(
        "correlations", lambda: _correlations(run, grid, series, estimate), empty, messages
    )


def analyse_run(run_dir: Path, kepler: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Analyse a finished run, write its results and report; return the verdict as a dict."""
    from scalelab.analysis.report import write_report

    run = Run(Path(run_dir))
    result = analyse(run, kepler)
    _guard("writing results", lambda: write_results(result), None, result.verdict.notes)
    _guard("report.html", lambda: write_report(result), None, result.verdict.notes)
    return result.verdict.to_dict()


def write_results(result: Analysis) -> None:
    """Verdict and energy into summary.json (analysis.json if the run has none); correlations."""
    run_dir = result.run.dir
    extra = {"verdict": result.verdict.to_dict(), "energy": result.energy}
    target = run_dir / "summary.json"
    if not target.is_file():
        target = run_dir / "analysis.json"
    current = json.loads(target.read_text()) if target.is_file() else {}
    _write_json(target, {**current, **extra})
    _write_json(run_dir / "correlations.json", result.correlations.to_dict())


def draw(result: Analysis) -> dict[str, Path]:
    run, out = result.run, result.run.dir / PLOTS_DIR
    made: dict[str, Path] = {}
    if not result.series.empty:
        slo = run.spec.get("slo") or {}
        made.update(
            time_plots(
                result.series,
                run.summary.get("consumer_lag") or [],
                out,
                timeline(run),
                bool(result.energy.get("estimate")),
                slo.get("latency_p99"),
            )
        )
    if "cpu" not in made and (path := charts.cpu_bars(run.summary.get("cpu", {}), out / "cpu.png")):
        made["cpu"] = path
    stages = charts.stage_plot(load_qos(run), out / "stages.png")
    corr = charts.heatmap(result.correlations.matrix, out / "correlation.png")
    made.update({k: v for k, v in (("stages", stages), ("correlation", corr)) if v})
    return made


def timeline(run: Run) -> Timeline:
    origin = run.origin_ns or 0
    phases = {
        name: ((s - origin) / 1e9, (e - origin) / 1e9)
        for name, (s, e) in run.phases.items()
        if name in ("warmup", "load", "cooldown")
    }
    marks = time_marks(run)
    events = [(m.start_s, m.label) for m in marks if m.end_s is None]
    faults = [(m.start_s, m.end_s, m.label) for m in marks if m.end_s is not None]
    return Timeline(phases, events, faults)


def load_qos(run: Run) -> pd.DataFrame:
    window, qos = run.load_window, run.qos
    if window is None or qos.empty:
        return qos.iloc[0:0]
    qos = first_completion_rows(qos)
    return qos[(qos["intended_ns"] >= window[0]) & (qos["intended_ns"] < window[1])]


def _series(
    run: Run, grid: Grid, spent: dict[str, Any], kepler: Mapping[str, str] | None
) -> pd.DataFrame:
    frame = key_series(run, grid)
    power = power_series(run, grid, spent.get("source", "none"), kepler)
    if power is not None:
        frame["power"] = power
    return frame


def _correlations(run: Run, grid: Grid, series: pd.DataFrame, estimate: bool) -> Correlations:
    assert run.load_window is not None  # a grid exists only with a load phase
    metrics = own_metrics(run)
    focus = metrics[metrics["metric"].astype(str).str.startswith(FOCUS_PREFIXES)]
    raw = resample_metrics(focus, grid)
    inside = grid.inside(run.load_window)
    frame = series.join(raw, how="left").loc[inside]
    derived = estimate and "power" in frame
    if derived:
        frame = frame.drop(columns=["power"])
    result = correlate(frame, grid.step_s, key=[c for c in series.columns if c in frame])
    if derived:
        result.dropped.append({"series": "power", "reason": ESTIMATED_POWER})
    return result


def _guard(step: str, compute: Callable[[], T], fallback: T, messages: list[str]) -> T:
    """Run one analysis step; on an unexpected error keep going with `fallback` and say so."""
    try:
        return compute()
    except Exception as error:  # noqa: BLE001 - the run's analysis must never raise
        last = traceback.format_exception_only(error)[-1].strip()
        messages.append(f"{step} failed: {last}")
        return fallback


def _no_energy() -> dict[str, Any]:
    return {
        "source": "none",
        "estimate": False,
        "phases": {},
        "load": {},
        "components": {},
        "message": "energy not computed",
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
