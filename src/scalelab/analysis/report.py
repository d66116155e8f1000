"""`runs/<id>/report.html`: one self-contained page per run, or a comparison of several.

Order of a run's report: the key parameters (platform, workers, threads,
batch, profile and rate, SLOs), the verdict with its reasons, the headline
figures and the per-step table, then interactive charts over time (linked x
axes: zoom one, all follow), the latency distribution, energy, the strongest
non-trivial correlations, per-worker and per-stage tables, accounting and the
run record's facts. The same charts are written as PNG and SVG under
`plots/` for papers, listed at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalelab.analysis import htmlkit as h
from scalelab.analysis.analyse import Analysis, analyse, load_qos
from scalelab.analysis.dataset import Run
from scalelab.analysis.interactive import Chart, distribution_charts, time_charts
from scalelab.analysis.report_parts import (
    correlation_section,
    energy_section,
    faults_section,
    files_section,
    key_parameters,
    record_section,
    spec_section,
    steps_section,
    tables_section,
)
from scalelab.analysis.units import slo_values

REPORT_FILE = "report.html"
CAPTIONS = {
    "rate": "Target rate (producer's schedule) against the rate actually sent, per step.",
    "throughput": "Frames completed per step, with the input rate for reference.",
    "latency": "End-to-end latency percentiles per step, by completion time.",
    "consumer_lag": "Messages in the input topic not yet consumed.",
    "cpu": "CPU cores used by each component; the line is the whole host.",
    "power": "Power over time.",
    "stages": "Where the time per frame goes, per worker.",
    "correlation": "Pearson coefficients between the headline series (load phase).",
}


def build_report(
    run_dirs: Sequence[Path], out: Path | None = None, kepler: Mapping[str, str] | None = None
) -> Path:
    """report.html for one run; comparison.html (first run's dir, or `out`) for several."""
    if not run_dirs:
        raise ValueError("build_report needs at least one run directory")
    if len(run_dirs) == 1:
        return write_report(analyse(Run(Path(run_dirs[0])), kepler), out)
    from scalelab.analysis.compare import write_comparison

    return write_comparison([Run(Path(d)) for d in run_dirs], out)


def write_report(result: Analysis, out: Path | None = None) -> Path:
    path = out or result.run.dir / REPORT_FILE
    path.write_text(render(result))
    return path


def render(result: Analysis) -> str:
    run = result.run
    interactive = h.has_plotly()
    over_time, distribution = charts(result) if interactive else ([], [])
    body = [
        header(run),
        key_parameters(run),
        verdict_section(result),
        h.section("Summary (load phase, warmup excluded)", h.pairs_table(headline_rows(result))),
        steps_section(run.summary.get("steps") or []),
        faults_section(run.summary.get("faults") or []),
        charts_section(over_time, distribution) if interactive else plots_section(result),
        energy_section(result.energy),
        correlation_section(result.correlations),
        tables_section(run.summary),
        record_section(run.record),
        files_section(result.plots, run.dir),
        spec_section(run.params),
    ]
    specs = [c.spec() for c in over_time + distribution]
    return h.page(f"scalelab report {run.id}", "\n".join(body), specs)


def charts(result: Analysis) -> tuple[list[Chart], list[Chart]]:
    """The interactive charts over time, and the latency distribution's."""
    run = result.run
    over_time = time_charts(run, result.series, bool(result.energy.get("estimate")))
    return over_time, distribution_charts(load_qos(run), run.spec.get("slo") or {})


def charts_section(over_time: list[Chart], distribution: list[Chart]) -> str:
    if not over_time and not distribution:
        return h.section("Charts", '<p class="muted">no data to plot</p>')
    return "\n".join(
        [
            h.section(
                "Over time",
                "<p class='muted'>Linked x axes: drag to zoom one chart and the others follow; "
                "double-click to reset. Grey band: warmup; blue: cooldown; red band: a fault's "
                "window; red dashes: other events.</p>",
                *(h.chart(c.id, c.caption) for c in over_time),
            ),
            h.section(
                "Latency distribution (load phase)",
                '<div class="grid2">'
                + "".join(h.chart(c.id, c.caption) for c in distribution)
                + "</div>",
            )
            if distribution
            else "",
        ]
    )


def header(run: Run) -> str:
    description = run.spec.get("description") or ""
    return (
        f"<h1>{h.esc(run.id)}</h1><p>{h.esc(description)}</p>"
        f'<p class="muted">status {h.esc(run.record.get("status", "unknown"))} · '
        f"started {h.esc(run.record.get('started', '–'))} · "
        f"ended {h.esc(run.record.get('ended', '–'))} (UTC)</p>"
    )


def verdict_section(result: Analysis) -> str:
    checked = result.verdict
    badge = f'<span class="badge {checked.result.lower()}">{checked.result}</span>'
    reasons = "".join(f"<li>{h.esc(r)}</li>" for r in checked.reasons)
    notes = "".join(f"<li>{h.esc(n)}</li>" for n in checked.notes)
    slo_rows = [
        (
            name,
            *slo_values(name, entry),
            h.Raw(
                '<span class="met">met</span>'
                if entry["met"]
                else '<span class="missed">missed</span>'
            ),
        )
        for name, entry in checked.slo.items()
    ]
    slo = (
        h.table(["SLO", "target", "measured", ""], slo_rows)
        if slo_rows
        else '<p class="muted">the spec sets no SLO</p>'
    )
    return h.section(
        "Verdict",
        f"<p>{badge}</p>",
        f'<ul class="reasons">{reasons}</ul>' if reasons else "",
        slo,
        f'<h3>Notes</h3><ul class="muted">{notes}</ul>' if notes else "",
    )


def headline_rows(result: Analysis) -> list[tuple[str, Any]]:
    summary = result.run.summary
    rate, latency = summary.get("rate") or {}, summary.get("latency_s") or {}
    lags = [s["lag"] for s in summary.get("consumer_lag") or []]
    load = result.energy.get("load") or {}
    own = result.energy.get("attributed") or {}
    tag = " (estimate)" if result.energy.get("estimate") else ""
    ratio = rate.get("achieved_ratio")
    target, throughput = rate.get("target_rate"), summary.get("throughput")
    served = f" ({throughput / target:.1%} of offered)" if target and throughput is not None else ""
    completion = summary.get("completion") or {}
    return [
        ("offered rate (target)", h.number(rate.get("target_rate"), 2, "msg/s")),
        (
            "achieved rate (sent)",
            h.number(rate.get("achieved_rate"), 2, "msg/s")
            + (f" ({ratio:.1%} of target)" if ratio is not None else ""),
        ),
        ("throughput (completed)", h.number(throughput, 2, "frames/s") + served),
        (
            "not completed (load phase)",
            f"{_or_dash(completion.get('not_completed'))} of "
            f"{_or_dash(completion.get('load_messages'))}",
        ),
        ("duplicate records (left out)", (summary.get("duplicates") or {}).get("records", "–")),
        (
            "latency p50 / p95 / p99 / max",
            " / ".join(h.ms(latency.get(k)) for k in ("p50", "p95", "p99", "max")),
        ),
        ("schedule lag p99", h.ms(rate.get("schedule_lag_p99_s"))),
        ("consumer lag max / end", f"{max(lags, default=0)} / {lags[-1] if lags else 0}"),
        (f"energy in the load phase, host-wide{tag}", h.number(load.get("joules"), 1, "J")),
        (f"energy per frame, host-wide{tag}", h.number(load.get("joules_per_frame"), 3, "J")),
        (
            f"energy in the load phase, the run's own processes{tag}",
            h.number(own.get("joules"), 1, "J"),
        ),
        (
            f"energy per frame, the run's own processes{tag}",
            h.number(own.get("joules_per_frame"), 3, "J"),
        ),
        ("mean power" + tag, h.number(load.get("mean_watts"), 2, "W")),
    ]


def plots_section(result: Analysis) -> str:
    figures = [
        h.image(result.plots[name], CAPTIONS.get(name, name))
        for name in CAPTIONS
        if name in result.plots
    ]
    if not figures:
        return h.section("Plots", '<p class="muted">no data to plot</p>')
    return h.section("Plots", *figures)


def _or_dash(value: object) -> object:
    """A missing figure (None: the load phase's messages are unknown) shows as a dash."""
    return "–" if value is None else value
