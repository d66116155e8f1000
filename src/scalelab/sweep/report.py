"""The sweep's offline HTML report: charts, per-cell means with 95 % intervals, every run.

Everything it shows comes from the sweep's Parquet files (sweep.parquet,
cells.parquet, capacity.parquet), so a notebook can redraw any chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.analysis.htmlkit import Raw, esc, image, page, pairs_table, section, table
from scalelab.sweep import charts
from scalelab.sweep.state import read_sweep
from scalelab.sweep.stats import METHOD

REPORT_FILE = "report.html"
CHARTS_DIR = "charts"
"""The charts as PNG files too (the report embeds them), for papers and READMEs."""
CELL_FIGURES = (
    ("offered_rate", "offered msg/s", 2, 1.0),
    ("throughput", "completed msg/s", 2, 1.0),
    ("latency_p50_s", "p50 ms", 1, 1000.0),
    ("latency_p99_s", "p99 ms", 1, 1000.0),
    ("joules_per_frame", "J/frame", 3, 1.0),
)


def write_report(sweep_dir: Path) -> Path:
    data = read_sweep(sweep_dir)
    cells = _read(sweep_dir / "cells.parquet")
    runs = _read(sweep_dir / "sweep.parquet")
    capacity = _read(sweep_dir / "capacity.parquet")
    params = list(data.get("vary") or {})
    slo = _slo(runs)
    figures = _charts(cells, capacity, params, slo, sweep_dir / CHARTS_DIR)
    body = "\n".join(
        [
            f"<h1>Sweep {esc(data.get('id'))}</h1>",
            pairs_table(_header(data, runs)),
            section("Charts", *figures),
            section("Capacity", *_capacity(capacity, data)) if not capacity.empty else "",
            section("Cells: mean [95 % interval]", *_cells(cells, params)),
            section("Runs", _runs(runs, params)),
        ]
    )
    path = sweep_dir / REPORT_FILE
    path.write_text(page(f"sweep {data.get('id')}", body))
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def _slo(runs: pd.DataFrame) -> float | None:
    """The p99 ceiling of the sweep's runs (the same in every run unless it is varied)."""
    if runs.empty or "slo_latency_p99_s" not in runs:
        return None
    values = runs["slo_latency_p99_s"].dropna().unique()
    return float(values[0]) if len(values) == 1 else None


def _header(data: dict[str, Any], runs: pd.DataFrame) -> list[tuple[str, Any]]:
    states = pd.Series([e.get("status") for e in (data.get("runs") or {}).values()])
    counts = ", ".join(f"{n} {s}" for s, n in states.value_counts().items())
    vary = "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in data.get("vary", {}).items())
    return [
        ("kind", data.get("kind")),
        ("spec", f"{data.get('spec')} (sha256 {str(data.get('spec_sha256'))[:12]})"),
        ("varied", vary or "nothing"),
        ("repetitions", data.get("repetitions")),
        ("run order", f"random, seed {data.get('seed')}"),
        ("runs", counts),
        ("status", data.get("status")),
        ("intervals", METHOD),
    ]


def _charts(
    cells: pd.DataFrame, capacity: pd.DataFrame, params: list[str], slo: float | None, out: Path
) -> list[str]:
    drawn = [
        (charts.latency_chart(cells, params, slo, out / "latency.png"), "latency vs offered"),
        (charts.throughput_chart(cells, params, out / "throughput.png"), "throughput vs offered"),
        (charts.energy_chart(cells, params, out / "energy.png"), "energy per frame vs offered"),
    ]
    if not capacity.empty:
        drawn.append((charts.capacity_chart(capacity, out / "capacity.png"), "capacity"))
    shown = [image(path, caption) for path, caption in drawn if path is not None]
    return shown or ['<p class="muted">no finished run to draw yet</p>']


def _capacity(capacity: pd.DataFrame, data: dict[str, Any]) -> list[str]:
    result = data.get("capacity") or {}
    rows = [
        [
            int(r.workers),
            r.capacity,
            r.first_failing,
            r.joules_per_frame,
            r.efficiency,
            int(r.probes),
            r.note or "",
        ]
        for r in capacity.itertuples()
    ]
    headers = [
        "workers",
        "capacity msg/s",
        "lowest failing msg/s",
        "J/frame at capacity",
        "scaling efficiency",
        "probes",
        "note",
    ]
    criteria = result.get("criteria", "")
    return [f"<p>{esc(criteria)}</p>", table(headers, rows)]


def _cells(cells: pd.DataFrame, params: list[str]) -> list[str]:
    if cells.empty:
        return ['<p class="muted">no finished run yet</p>']
    headers = [*params, "runs", *(label for _, label, _, _ in CELL_FIGURES), "disagreement"]
    rows = []
    for _, row in cells.iterrows():
        shown = [_interval(row, name, digits, scale) for name, _, digits, scale in CELL_FIGURES]
        rows.append(
            [*(row.get(p) for p in params), int(row["runs"]), *shown, row.get("disagree") or ""]
        )
    note = (
        '<p class="muted">A disagreement names a repetition outside the 95 % prediction '
        "interval of its cell's other repetitions: the runs differ more than their spread "
        "allows.</p>"
    )
    return [table(headers, rows), note]


def _interval(row: pd.Series, name: str, digits: int, scale: float) -> str:
    mean, low, high = row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi")
    if mean is None or pd.isna(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if low is not None and pd.notna(low):
        text += f" [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"
    return text


def _runs(runs: pd.DataFrame, params: list[str]) -> str:
    if runs.empty:
        return '<p class="muted">no run yet</p>'
    headers = [
        *params,
        "rep",
        "run",
        "status",
        "verdict",
        "SLO",
        "sustained",
        "offered",
        "completed",
        "p99 ms",
        "J/frame",
    ]
    rows = []
    for _, r in runs.iterrows():
        link = Raw(f'<a href="file://{esc(r["run_dir"])}/report.html">{esc(r["run_id"])}</a>')
        p99 = r.get("latency_p99_s")
        rows.append(
            [
                *(r.get(p) for p in params),
                int(r["repetition"]),
                link,
                r["status"],
                r.get("verdict"),
                _met(r.get("slo_met")),
                _sustained(r),
                r.get("offered_rate"),
                r.get("throughput"),
                None if pd.isna(p99) else p99 * 1000,
                r.get("joules_per_frame"),
            ]
        )
    return table(headers, rows)


def _met(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return "met" if value else "missed"


def _sustained(row: pd.Series) -> str:
    """Yes, or why not (`judge.py`), for a run of the sweep."""
    if "sustained" not in row or pd.isna(row["sustained"]):
        return "–"
    return "yes" if row["sustained"] else f"no: {row.get('not_sustained_because') or ''}"
