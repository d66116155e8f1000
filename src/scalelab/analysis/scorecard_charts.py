"""The scorecard's page: the policies ranked, then overlaid over time their replicas against
the offered load, and their p95 latency against the SLO ceiling.

`scorecard.html` (plotly inlined: it opens offline) goes under the runs directory,
`comparisons/<n>-scorecard-<first run>-<hash>/`, as `compare`'s page does, with
`plots/scorecard-scale.png` and `plots/scorecard-latency.png` (and SVG) beside it.
The latency drawn is what the scorecard judges: p95 per 1 s bin by intended send
time, so the points above the ceiling line are the table's SLO-violation seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalelab.analysis import htmlkit as h
from scalelab.analysis.compare import comparison_dir
from scalelab.analysis.compare_charts import PALETTE, overlay_layout, overlay_trace
from scalelab.analysis.dataset import Run
from scalelab.analysis.interactive import X_TITLE, Chart, slo_trace
from scalelab.analysis.plots import figure, limit, outside_legend, save
from scalelab.analysis.scorecard import COLUMNS, Scorecard
from scalelab.analysis.scorecard_series import Lines, lines

SCORECARD_FILE = "scorecard.html"
CEILING = "p95 ceiling"


def write_scorecard(card: Scorecard, run_dirs: Sequence[Path], out: Path | None = None) -> Path:
    """The page of a scorecard of these runs (in the order given); returns its path."""
    runs = [Run(d) for d in run_dirs]
    path = out or comparison_dir(runs, "scorecard") / SCORECARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn = policy_lines(card, runs)
    ceilings = sorted({s.slo_ceiling_s for s in card.scores})
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
        h.section("Ranking", h.table([c for c, _ in COLUMNS], [s.row() for s in card.scores])),
        h.section("Over time", *(h.chart(c.id, c.caption) for c in charts))
        if charts
        else h.section("Over time", *(h.image(p, p.stem) for p in pngs if p)),
    ]
    specs = [c.spec() for c in charts]
    path.write_text(h.page(f"scalelab scorecard of {len(runs)} runs", "\n".join(body), specs))
    return path


def policy_lines(card: Scorecard, runs: Sequence[Run]) -> list[Lines]:
    """Each scored run's lines in rank order, labelled by policy (and run when repeated)."""
    by_name = {run.dir.name: run for run in runs}
    policies = [s.policy for s in card.scores]
    return [
        lines(by_name[s.run], s.policy if policies.count(s.policy) == 1 else f"{s.policy} {s.run}")
        for s in card.scores
    ]


def scorecard_charts(drawn: Sequence[Lines], same_load: bool, ceilings: list[float]) -> list[Chart]:
    scale = [
        overlay_trace(*d.replicas, d.label, i, "workers", "s", shape="hv")
        for i, d in enumerate(drawn)
    ]
    scale_layout = overlay_layout(
        "Replicas over time against the offered load", X_TITLE, "replicas (workers)"
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
    latency = [
        overlay_trace(d.p95_s[0], d.p95_s[1] * 1000, d.label, i, "ms", "s")
        for i, d in enumerate(drawn)
    ]
    ends = [float(t) for d in drawn for t in d.p95_s[0][[0, -1]] if d.p95_s[0].size]
    if ends:
        latency += [slo_trace(c, CEILING, min(ends), max(ends)) for c in ceilings]
    charts = (
        Chart(
            "chart-scorecard-scale",
            "Workers of each policy (steps); dashed: the offered load (target rate, right axis).",
            scale,
            scale_layout,
        ),
        Chart(
            "chart-scorecard-latency",
            "Latency p95 per second by intended send time, each policy; dotted: the SLO "
            "ceiling the scorecard counts violations against.",
            latency,
            overlay_layout("Latency p95 over time", X_TITLE, "latency p95 (ms)"),
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
    fig, ax = figure("Replicas over time against the offered load", "replicas (workers)")
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


def latency_png(drawn: Sequence[Lines], ceilings: list[float], path: Path) -> Path | None:
    if not any(d.p95_s[0].size for d in drawn):
        return None
    fig, ax = figure(
        "Latency p95 over time (per second, by intended send time)", "latency p95 (ms)"
    )
    for i, d in enumerate(drawn):
        ax.plot(d.p95_s[0], d.p95_s[1] * 1000, color=PALETTE[i % len(PALETTE)], label=d.label)
    top = max(float(d.p95_s[1].max()) * 1000 for d in drawn if d.p95_s[1].size)
    for ceiling in ceilings:
        limit(ax, ceiling * 1000, f"SLO {CEILING} {ceiling * 1000:g} ms", top)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since traffic started")
    outside_legend(ax)
    return save(fig, path)
