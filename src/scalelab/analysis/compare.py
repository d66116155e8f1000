"""Several runs side by side: headline figures, and the spec parameters that differ.

workload.workers   1       2               4
throughput         3.9     7.8 (+100.0 %)  9.1 (+133.3 %)   frames/s
latency p99        120 ms  180 ms (+50 %)  950 ms (+692 %)

Every figure of a later run carries its change against the first run. The
comparison page (`comparisons/<id>/comparison.html` under the runs
directory, never inside a run) overlays the runs' latency CDFs and their
throughput and p99 over time, and links to each run's own report.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab import paths
from scalelab.analysis import charts
from scalelab.analysis import htmlkit as h
from scalelab.analysis.dataset import Run, headline
from scalelab.analysis.energy import energy
from scalelab.analysis.host_cpu import foreign_cpu
from scalelab.analysis.verdict import verdict

COMPARISON_FILE = "comparison.html"
COMPARISONS_DIR = "comparisons"
Formatter = Callable[[Any], str]
FIGURES: tuple[tuple[str, str, Formatter], ...] = (
    ("status", "status", str),
    ("verdict", "verdict", str),
    ("target_rate", "offered rate (target)", lambda v: h.number(v, 2, "msg/s")),
    ("achieved_rate", "achieved rate (sent)", lambda v: h.number(v, 2, "msg/s")),
    ("throughput", "throughput (completed)", lambda v: h.number(v, 2, "frames/s")),
    ("throughput_ratio", "completed / offered", lambda v: h.number(v * 100, 1, "%")),
    ("not_completed", "not completed (load phase)", lambda v: h.number(v, 0)),
    ("duplicate_records", "duplicate records (left out)", lambda v: h.number(v, 0)),
    ("saturated_steps", "saturated steps", str),
    ("latency_p50_s", "latency p50", h.ms),
    ("latency_p95_s", "latency p95", h.ms),
    ("latency_p99_s", "latency p99", h.ms),
    ("latency_max_s", "latency max", h.ms),
    ("consumer_lag_max", "consumer lag max", lambda v: h.number(v, 0)),
    ("lost", "lost messages", lambda v: h.number(v, 0)),
    ("cpu_cores", "CPU cores (sum)", lambda v: h.number(v, 2)),
    ("energy_j_per_frame", "energy per frame (host-wide)", lambda v: h.number(v, 3, "J")),
    ("energy_own_j_per_frame", "energy per frame (run's own)", lambda v: h.number(v, 3, "J")),
    ("foreign_cpu_share", "host CPU not the run's", lambda v: h.number(v * 100, 1, "%")),
    ("energy_source", "energy source", str),
)


@dataclass
class Comparison:
    runs: list[str]
    figures: pd.DataFrame
    """Headline figures: one row per run (raw values), columns as in `runs_table`."""
    differing: dict[str, list[Any]]
    """Flattened spec keys whose values differ, with each run's value in order."""

    def rows(self) -> list[tuple[str, list[str]]]:
        """Display rows: differing parameters first, then the formatted headline figures."""
        params = [(key, [_text(v) for v in values]) for key, values in self.differing.items()]
        figures = [
            (label, [fmt(v) if v is not None else "–" for v in self.figures[key]])
            for key, label, fmt in FIGURES
        ]
        return params + figures

    def deltas(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per later run, per numeric figure: its change against the first run, and in percent."""
        first = self.figures.iloc[0]
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for run_id, row in list(self.figures.iterrows())[1:]:
            out[str(run_id)] = {
                key: change(first[key], row[key])
                for key, _, _ in FIGURES
                if _numeric(first[key]) and _numeric(row[key])
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything for `compare --json`: runs, differing parameters, figures, deltas."""
        figures = {
            str(run_id): {key: row[key] for key, _, _ in FIGURES}
            for run_id, row in self.figures.iterrows()
        }
        return {
            "runs": self.runs,
            "baseline": self.runs[0],
            "differing": self.differing,
            "figures": figures,
            "deltas": self.deltas(),
        }

    def display_rows(self) -> list[tuple[str, list[str]]]:
        """As `rows`, each later run's figure followed by its change against the first run."""
        deltas = self.deltas()
        out = []
        for label, values in self.rows():
            key = next((k for k, text, _ in FIGURES if text == label), None)
            shown = [values[0]]
            for run_id, value in zip(self.runs[1:], values[1:], strict=True):
                entry = deltas.get(run_id, {}).get(key or "")
                shown.append(f"{value} ({_percent(entry)})" if entry else value)
            out.append((label, shown))
        return out


def change(base: Any, value: Any) -> dict[str, float | None]:
    delta = float(value) - float(base)
    percent = delta / abs(float(base)) * 100 if float(base) else None
    return {"delta": delta, "percent": percent}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _percent(entry: dict[str, float | None]) -> str:
    percent = entry.get("percent")
    if percent is None:
        return f"{entry['delta']:+.3g}"
    return f"{percent:+.1f} %"


def compare(runs: Sequence[Run]) -> Comparison:
    figures = pd.DataFrame([_figures(run) for run in runs]).set_index("run_id", drop=False)
    figures = figures.astype(object).where(figures.notna(), None)
    return Comparison([run.id for run in runs], figures, differing_params(runs))


def differing_params(runs: Sequence[Run]) -> dict[str, list[Any]]:
    keys = sorted({key for run in runs for key in run.params})
    out = {}
    for key in keys:
        values = [run.params.get(key) for run in runs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            out[key] = values
    return out


def comparison_dir(runs: Sequence[Run], kind: str = "runs") -> Path:
    """Where the comparison of these runs goes: its own directory, named by the runs' ids
    (`kind` tells a comparison from a scorecard of the same runs)."""
    digest = hashlib.sha256("\n".join(run.id for run in runs).encode()).hexdigest()[:6]
    return paths.runs_dir() / COMPARISONS_DIR / f"{len(runs)}-{kind}-{runs[0].id[:16]}-{digest}"


def write_comparison(runs: Sequence[Run], out: Path | None = None) -> Path:
    from scalelab.analysis.compare_charts import comparison_charts

    path = out or comparison_dir(runs) / COMPARISON_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison = compare(runs)
    chart = charts.comparison_bars(
        comparison.figures.set_index("run_id"), path.parent / "plots" / "comparison.png"
    )
    rows = [(label, *values) for label, values in comparison.display_rows()]
    overlays = comparison_charts(runs) if h.has_plotly() else []
    links = [
        (
            run.id,
            h.Raw(
                f'<a href="{h.esc(_link(run.dir / "report.html", path.parent))}">report</a>'
                if (run.dir / "report.html").is_file()
                else "no report yet"
            ),
        )
        for run in runs
    ]
    body = [
        f"<h1>Comparison of {len(runs)} runs</h1>",
        f"<p class='muted'>Changes are against the first run, {h.esc(runs[0].id)}.</p>",
        h.section("Runs", h.table(["run", "report"], links)),
        h.section(
            "Spec parameters that differ",
            h.table(["parameter", *comparison.runs], rows[: len(comparison.differing)])
            if comparison.differing
            else "<p class='muted'>the specs are identical</p>",
        ),
        h.section(
            "Headline figures (load phase)",
            h.table(["figure", *comparison.runs], rows[len(comparison.differing) :]),
        ),
        h.section("Overlaid", *(h.chart(c.id, c.caption) for c in overlays)) if overlays else "",
        h.section("Throughput and latency", h.image(chart, "throughput and p99 per run"))
        if chart
        else "",
    ]
    specs = [c.spec() for c in overlays]
    path.write_text(h.page(f"scalelab comparison of {len(runs)} runs", "\n".join(body), specs))
    return path


def _link(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def _figures(run: Run) -> dict[str, Any]:
    """Headline figures, computing the verdict and energy when summary.json lacks them."""
    figures = {**headline(run), **corrected(run)}
    if figures["verdict"] is None and run.summary:
        figures["verdict"] = verdict(run).result
    spent = run.summary.get("energy") or {}
    if figures["energy_source"] is None and run.summary:
        spent = energy(run)
        figures["energy_source"] = spent.get("source")
        figures["energy_j_per_frame"] = (spent.get("load") or {}).get("joules_per_frame")
    figures["energy_own_j_per_frame"] = (spent.get("attributed") or {}).get("joules_per_frame")
    return figures


def corrected(run: Run) -> dict[str, Any]:
    """The figures that count each message once and name what was not served."""
    summary = run.summary
    target, throughput = (summary.get("rate") or {}).get("target_rate"), summary.get("throughput")
    steps = [s["step"] for s in summary.get("steps") or [] if s.get("saturated")]
    host = foreign_cpu(run) if summary else None
    return {
        "throughput_ratio": throughput / target if target and throughput is not None else None,
        "not_completed": (summary.get("completion") or {}).get("not_completed"),
        "duplicate_records": (summary.get("duplicates") or {}).get("records"),
        "saturated_steps": ", ".join(steps)
        if steps
        else ("none" if summary.get("steps") else None),
        "foreign_cpu_share": host.get("foreign_share") if host else None,
    }


def _text(value: Any) -> str:
    return "–" if value is None else str(value)
