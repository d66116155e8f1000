"""The scorecard's page: the policies ranked (each run linked to its report), then overlaid
over time their replicas against the offered load, and their latency against the SLO.

`scorecard.html` (plotly inlined: it opens offline) goes under the runs directory,
`comparisons/<n>-scorecard-<first run>-<hash>/`, as `compare`'s page does, with
`plots/scorecard-scale.png` and `plots/scorecard-latency.png` (and SVG) beside it.
The latency drawn is what the scorecard judges: the percentile the SLO names (p95 without
one, against the default ceiling, named so) per 1 s bin of the load phase by intended send
time, so the points above a ceiling line are the table's SLO-violation seconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from scalelab.analysis import htmlkit as h
from scalelab.analysis.compare import comparison_dir
from scalelab.analysis.compare_charts import PALETTE, overlay_layout, overlay_trace
from scalelab.analysis.dataset import Run
from scalelab.analysis.interactive import X_TITLE, Chart, slo_trace
from scalelab.analysis.plots import figure, limit, outside_legend, save
from scalelab.analysis.scorecard import COLUMNS, PERCENTILES, Ceiling, Scorecard
from scalelab.analysis.scorecard_series import Lines, lines
from scalelab.analysis.units import seconds

SCORECARD_FILE = "scorecard.html"


def write_scorecard(card: Scorecard, run_dirs: Sequence[Path], out: Path | None = None) -> Path:
    """The page of a scorecard of these runs (in the order given); returns its path."""
    runs = [Run(d) for d in run_dirs]
    path = out or comparison_dir(runs, "scorecard") / SCORECARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    ceilings = sorted({c for s in card.scores for c in s.slo_ceilings})
    drawn = policy_lines(card, runs)
    pngs = [
        scale_png(drawn, card.same_load, path.parent / "plots" / "scorecard-scale.png"),
        latency_png(drawn, ceilings, path.parent / "plots" / "scorecard-latency.png"),
    ]
    charts = scorecard_charts(drawn, card.same_load, ceilings) if h.has_plotly() else []
    body = [
        f"<h1>Autoscaler scorecard of {len(runs)} runs</h1>",
        "<p class='muted'>Ranked by SLO-violation seconds, then replica-seconds, then energy.</p>",
        ""
        if card.same_load
        else "<p class='missed'>The runs' load or source differ: not the same trace.</p>",
        h.section("Ranking", ranking(card, run_dirs, path.parent)),
        h.section("Over time", *(h.chart(c.id, c.caption) for c in charts))
        if charts
        else h.section("Over time", *(h.image(p, p.stem) for p in pngs if p)),
    ]
    specs = [c.spec() for c in charts]
    path.write_text(h.page(f"scalelab scorecard of {len(runs)} runs", "\n".join(body), specs))
    return path


def ranking(card: Scorecard, run_dirs: Sequence[Path], base: Path) -> str:
    """The ranked table, each run with a link to its report.html relative to `base`."""
    by_name = {d.name: d for d in run_dirs}
    rows = [[*s.row(), report_link(by_name[s.run] / "report.html", base)] for s in card.scores]
    return h.table([c for c, _ in COLUMNS] + ["report"], rows)


def report_link(report: Path, base: Path) -> h.Raw | str:
    if not report.is_file():
        return "no report yet"
    href = Path(os.path.relpath(report.resolve(), base.resolve())).as_posix()
    return h.Raw(f'<a href="{h.esc(href)}">report</a>')


def percentiles(ceilings: Sequence[Ceiling]) -> list[str]:
    """The percentiles judged, in PERCENTILES' order."""
    return [p for p in PERCENTILES if any(c.percentile == p for c in ceilings)]


def policy_lines(card: Scorecard, runs: Sequence[Run]) -> list[Lines]:
    """Each scored run's lines in rank order, labelled by policy (and run when repeated)."""
    by_name = {run.dir.name: run for run in runs}
    policies = [s.policy for s in card.scores]
    return [
        lines(
            by_name[s.run],
            s.policy if policies.count(s.policy) == 1 else f"{s.policy} {s.run}",
            [c.percentile for c in s.slo_ceilings],
        )
        for s in card.scores
    ]


class LatencyLine(NamedTuple):
    name: str
    place: int  # the run's place in the ranking: its colour
    dashed: bool  # p99 where p95 is drawn too
    t: Any
    latency_s: Any


def scale_title(drawn: Sequence[Lines]) -> str:
    """The scale axis names what was scaled: workers, a Flink job's parallelism, or both."""
    units = {d.unit for d in drawn}
    if units == {"parallelism"}:
        return "parallelism (Flink job)"
    if units <= {"workers"}:
        return "replicas (workers)"
    return "scale (workers or parallelism)"


def latency_lines(drawn: Sequence[Lines]) -> list[LatencyLine]:
    """Each run's latency at each percentile it is judged by, named by percentile when
    several are drawn (then p99 dashed)."""
    several = len({p for d in drawn for p in d.latency}) > 1
    return [
        LatencyLine(f"{d.label} {p}" if several else d.label, i, several and p == "p99", t, v)
        for i, d in enumerate(drawn)
        for p, (t, v) in d.latency.items()
    ]


def ceiling_trace(ceiling: Ceiling, start: float, end: float) -> dict[str, Any]:
    label = ceiling.label(seconds(ceiling.limit_s))
    trace = slo_trace(ceiling.limit_s, "", start, end)
    return {**trace, "name": label, "hovertemplate": f"{label}<extra></extra>"}


def latency_title(ceilings: Sequence[Ceiling]) -> str:
    return f"latency {' and '.join(percentiles(ceilings))}"


def scorecard_charts(
    drawn: Sequence[Lines], same_load: bool, ceilings: Sequence[Ceiling]
) -> list[Chart]:
    scale = [
        overlay_trace(*d.replicas, d.label, i, d.unit, "s", shape="hv") for i, d in enumerate(drawn)
    ]
    scale_layout = overlay_layout(
        "Replicas over time against the offered load", X_TITLE, scale_title(drawn)
    )
    scale_layout["yaxis2"] = {
        "title": {"text": "offered load (msg/s)"},
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
        "showgrid": False,
    }
    scale_layout["margin"]["r"] = 70
    for name, (t, rate) in offered(drawn, same_load):
        trace = overlay_trace(t, rate, name, 0, "msg/s", "s", color="#000", dash="dash")
        scale.append({**trace, "yaxis": "y2"})
    shown = [line for line in latency_lines(drawn) if line.t.size]
    latency = [
        overlay_trace(
            line.t,
            line.latency_s * 1000,
            line.name,
            line.place,
            "ms",
            "s",
            dash="dash" if line.dashed else "solid",
        )
        for line in shown
    ]
    ends = [float(line.t[i]) for line in shown for i in (0, -1)]
    if ends:
        latency += [ceiling_trace(c, min(ends), max(ends)) for c in ceilings]
    title = latency_title(ceilings)
    charts = (
        Chart(
            "chart-scorecard-scale",
            "Workers of each policy (steps); dashed: the offered load (target rate, right axis).",
            scale,
            scale_layout,
        ),
        Chart(
            "chart-scorecard-latency",
            f"{title.capitalize()} per second of the load phase by intended send time, each "
            "policy at the percentile its SLO names; dotted: the ceilings the scorecard counts "
            "violations against (a second is violated when any of its run's is exceeded).",
            latency,
            overlay_layout(f"{title.capitalize()} over time", X_TITLE, f"{title} (ms)"),
        ),
    )
    return [c for c in charts if any(t["x"] for t in c.data)]


def offered(drawn: Sequence[Lines], same_load: bool) -> list[tuple[str, tuple[Any, Any]]]:
    """The offered load: once when the runs share their trace, else each run's."""
    have = [d for d in drawn if d.offered[0].size]
    if same_load:
        return [("offered load", have[0].offered)] if have else []
    return [(f"offered load: {d.label}", d.offered) for d in have]


def scale_png(drawn: Sequence[Lines], same_load: bool, path: Path) -> Path | None:
    if not any(d.replicas[0] for d in drawn):
        return None
    fig, ax = figure("Replicas over time against the offered load", scale_title(drawn))
    for i, d in enumerate(drawn):
        ax.step(*d.replicas, where="post", color=PALETTE[i % len(PALETTE)], label=d.label)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since traffic started")
    load = ax.twinx()
    for name, (t, rate) in offered(drawn, same_load):
        load.step(t, rate, where="post", color="black", ls="--", lw=1.2, label=name)
    load.set_ylabel("offered load (msg/s)")
    load.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + load.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=8)
    return save(fig, path)


def latency_png(drawn: Sequence[Lines], ceilings: Sequence[Ceiling], path: Path) -> Path | None:
    shown = [line for line in latency_lines(drawn) if line.t.size]
    if not shown:
        return None
    title = latency_title(ceilings)
    fig, ax = figure(
        f"{title.capitalize()} over time (per second of the load phase, by intended send time)",
        f"{title} (ms)",
    )
    for line in shown:
        color, style = PALETTE[line.place % len(PALETTE)], "--" if line.dashed else "-"
        ax.plot(line.t, line.latency_s * 1000, color=color, ls=style, label=line.name)
    top = max(float(line.latency_s.max()) * 1000 for line in shown)
    for ceiling in ceilings:
        limit(ax, ceiling.limit_s * 1000, ceiling.label(f"{ceiling.limit_s * 1000:g} ms"), top)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since traffic started")
    outside_legend(ax)
    return save(fig, path)
