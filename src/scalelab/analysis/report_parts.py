"""The report's table sections: energy, correlations, per-worker/stage/accounting, run record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.analysis import htmlkit as h
from scalelab.analysis.correlate import MAX_LAG_STEPS, Correlations, Pair
from scalelab.analysis.dataset import Run
from scalelab.analysis.units import SLO_UNITS, with_unit

SHOWN_DROPPED = 12
SHOWN_PAIRS = 8
LOAD_SHAPE_SKIP = ("profile", "duration", "warmup", "unit", "producers", "max_mbps")
"""Load keys shown apart from the profile's own (rate, steps, period...)."""


def key_parameters(run: Run) -> str:
    """What was run, at a glance: platform, workers, threads, batch, profile and rate, SLOs."""
    p = run.params
    unit = "msg/s" if p.get("load.unit", "msgs") == "msgs" else str(p.get("load.unit"))
    shape = ", ".join(
        f"{k[5:]} {v}"
        for k, v in p.items()
        if k.startswith("load.") and k[5:] not in LOAD_SHAPE_SKIP and v not in (None, "", "[]")
    )
    profile = p.get("load.profile")
    items = [
        ("platform", p.get("platform.kind") or run.record.get("platform")),
        ("workload", " ".join(str(p[k]) for k in ("workload.kind", "workload.model") if p.get(k))),
        ("workers", p.get("workload.workers")),
        ("threads", p.get("workload.threads")),
        ("batch", p.get("workload.batch_size")),
        ("partitions", p.get("broker.partitions")),
        ("profile", f"{profile} ({shape}; {unit})" if shape else profile),
        ("load", f"{_secs(p, 'load.duration')} after {_secs(p, 'load.warmup')} warmup"),
        *(
            (f"SLO {k[4:]}", with_unit(v, SLO_UNITS.get(k[4:])))
            for k, v in p.items()
            if k.startswith("slo.") and v is not None and k[4:] in SLO_UNITS
        ),
    ]
    cells = "".join(
        f"<div><b>{h.esc(label)}</b> {h.esc(value)}</div>"
        for label, value in items
        if value not in (None, "")
    )
    return f'<div class="keys" id="key-parameters">{cells}</div>'


def _secs(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    return with_unit(float(value), "s") if isinstance(value, int | float) else str(value)


def files_section(plots: dict[str, Path], run_dir: Path) -> str:
    """Links to the PNG and SVG of each chart (for papers), relative to the run directory."""
    rows = []
    for name, png in sorted(plots.items()):
        links = [png, png.with_suffix(".svg")]
        cells = " · ".join(
            f'<a href="{h.esc(_relative(f, run_dir))}">{f.suffix[1:].upper()}</a>'
            for f in links
            if f.is_file()
        )
        rows.append((name, h.Raw(cells)))
    if not rows:
        return ""
    return h.section(
        "Figures for papers",
        "<p class='muted'>The same charts as static files under plots/.</p>",
        h.table(["chart", "files"], rows),
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_uri()


def energy_section(energy: dict[str, Any]) -> str:
    parts = [f"<p>{h.esc(energy.get('message', ''))}</p>"]
    if energy.get("estimate"):
        assumptions = energy.get("assumptions") or {}
        parts.append(
            '<div class="estimate"><b>ESTIMATE</b>, not a measurement: no energy counters '
            f"(RAPL, Kepler) were available. Model: <code>{h.esc(energy.get('model', ''))}"
            f"</code><br>Basis: {h.esc(energy.get('basis', ''))}<br>"
            + h.pairs_table(assumptions.items())
            + "</div>"
        )
    elif energy.get("basis"):
        parts.append(f"<p class='muted'>{h.esc(energy['basis'])}</p>")
    own = energy.get("attributed") or {}
    if own:
        parts.append(
            "<p>Load phase: host-wide "
            + h.esc(h.number((energy.get("load") or {}).get("joules"), 1, "J"))
            + "; attributed to the run's own processes "
            + h.esc(h.number(own.get("joules"), 1, "J"))
            + f" ({own.get('share', 0):.0%} of the host's busy CPU)."
            + f"<br><span class='muted'>{h.esc(own.get('basis', ''))}</span></p>"
        )
    phases = energy.get("phases") or {}
    parts.append(
        h.table(
            ["phase", "seconds", "joules", "mean watts", "CPU seconds", "coverage"],
            [
                (
                    name,
                    p.get("seconds"),
                    p.get("joules"),
                    p.get("mean_watts"),
                    p.get("cpu_seconds"),
                    p.get("coverage"),
                )
                for name, p in phases.items()
            ],
        )
    )
    components = energy.get("components") or {}
    if components:
        parts.append(
            "<h3>Per component (load phase)</h3>"
            + h.table(
                ["component", "CPU seconds", "joules", "joules per frame"],
                [
                    (name, c.get("cpu_seconds"), c.get("joules"), c.get("joules_per_frame"))
                    for name, c in sorted(components.items())
                ],
            )
        )
    return h.section("Energy", *parts)


def steps_section(steps: list[dict[str, Any]]) -> str:
    """The per-step table of a step, ramp or diurnal load; nothing for a single segment."""
    if not steps:
        return ""
    rows = [
        (
            s.get("step"),
            f"{s.get('start_s')}–{s.get('end_s')}",
            h.number(s.get("offered_rate"), 2, "msg/s"),
            h.number(s.get("completed_rate"), 2, "msg/s"),
            *(h.ms((s.get("latency_s") or {}).get(k)) for k in ("p50", "p95", "p99")),
            s.get("lag_end"),
            h.Raw('<span class="missed">saturated</span>') if s.get("saturated") else "",
        )
        for s in steps
    ]
    return h.section(
        "Per step (load phase)",
        h.table(
            ["step", "seconds", "offered", "completed", "p50", "p95", "p99", "lag at end", ""],
            rows,
        ),
        "<p class='muted'>completed: first completions by done time inside the step; "
        "latency: the messages offered in the step.</p>",
    )


def faults_section(faults: list[dict[str, Any]]) -> str:
    if not faults:
        return ""
    rows = [
        (
            f.get("kind"),
            f.get("t_s"),
            f.get("component"),
            ", ".join(str(p) for p in f.get("partitions") or []),
            h.ms(f.get("recovery_s")) if f.get("recovered") else "never",
        )
        for f in faults
    ]
    return h.section(
        "Faults",
        h.table(["fault", "at (s)", "component", "partitions held", "recovery"], rows),
        "<p class='muted'>recovery: from the kill until every partition the worker held "
        "had a completion by another worker.</p>",
    )


def correlation_section(correlations: Correlations) -> str:
    """The few strongest pairs of series that measure different things, with their lag."""
    rows = [_pair_row(p) for p in correlations.pairs[:SHOWN_PAIRS]]
    hidden = len(correlations.pairs) - len(rows)
    more = f"<p class='muted'>{hidden} weaker pairs in correlations.json</p>" if hidden else ""
    trivial = (
        f"; {correlations.trivial} trivial pairs left out (one quantity measured twice, "
        "a metric against its own target, percentiles of one distribution)"
        if correlations.trivial
        else ""
    )
    return h.section(
        "Strongest correlations (load phase)",
        f"<p class='muted'>{h.esc(correlations.message)}{h.esc(trivial)}; grid step "
        f"{correlations.step_s:g} s; best lag: b shifted after a where |r| is largest "
        f"(within ±{MAX_LAG_STEPS} steps).</p>",
        h.table(["a", "b", "Pearson", "Spearman", "n", "best lag (s)", "r at lag", "leads"], rows),
        more,
        _dropped_note(correlations.dropped),
    )


def spec_section(params: dict[str, Any]) -> str:
    """The resolved spec as dotted keys, folded away."""
    rows = h.pairs_table(
        (key, "–" if value is None else str(value)) for key, value in params.items()
    )
    return h.section(
        "Spec", f"<details><summary>{len(params)} parameters</summary>{rows}</details>"
    )


def _pair_row(p: Pair) -> tuple[Any, ...]:
    lead = _lead(p.leader, p.a, p.b, p.lag_s)
    return (p.a, p.b, p.pearson, p.spearman, p.samples, p.lag_s, p.lagged_pearson, lead)


def _dropped_note(dropped: list[dict[str, str]]) -> str:
    if not dropped:
        return ""
    shown = ", ".join(f"{d['series']} ({d['reason']})" for d in dropped[:SHOWN_DROPPED])
    more = f" and {len(dropped) - SHOWN_DROPPED} more" if len(dropped) > SHOWN_DROPPED else ""
    return f"<p class='muted'>left out: {h.esc(shown)}{more}</p>"


def tables_section(summary: dict[str, Any]) -> str:
    workers = summary.get("per_worker") or {}
    stages = summary.get("stages_s") or {}
    accounting = summary.get("accounting") or {}
    return "\n".join(
        [
            h.section(
                "Per worker",
                h.table(
                    ["worker", "processed", "throughput (frames/s)", "latency p99"],
                    [
                        (w, s.get("processed"), s.get("throughput"), h.ms(s.get("latency_p99_s")))
                        for w, s in sorted(workers.items())
                    ],
                ),
            ),
            h.section(
                "Per stage (time per frame)",
                h.table(
                    ["stage", "p50", "p95", "p99", "max", "mean"],
                    [
                        (stage, *(h.ms(s.get(k)) for k in ("p50", "p95", "p99", "max", "mean")))
                        for stage, s in stages.items()
                    ],
                ),
            ),
            h.section(
                "Accounting",
                h.pairs_table(accounting.items()),
                "<p class='muted'>produced = processed + dead-lettered + still queued; "
                "duplicates are counted, never dropped.</p>",
            ),
        ]
    )


def record_section(record: dict[str, Any]) -> str:
    phases = [
        (p.get("name"), p.get("start"), p.get("end"), _seconds(p))
        for p in record.get("phases") or []
    ]
    facts = [
        ("platform", record.get("platform")),
        ("git commit", record.get("git_commit")),
        ("spec", record.get("spec_path")),
    ]
    errors = [
        (e.get("kind"), e.get("component", ""), e.get("message", ""))
        for e in record.get("errors") or []
    ]
    events = [(e.get("time"), e.get("kind"), e.get("detail")) for e in record.get("events") or []]
    warnings = [(w,) for w in record.get("warnings") or []]
    return h.section(
        "Run record",
        h.pairs_table(facts),
        "<h3>Phases (UTC)</h3>" + h.table(["phase", "start", "end", "seconds"], phases),
        "<h3>Versions</h3>" + h.pairs_table((record.get("versions") or {}).items()),
        "<h3>Host</h3>" + h.pairs_table((record.get("host") or {}).items()),
        "<h3>Errors</h3>" + h.table(["kind", "component", "message"], errors) if errors else "",
        "<h3>Warnings</h3>" + h.table(["warning"], warnings) if warnings else "",
        "<h3>Events</h3>" + h.table(["time", "kind", "detail"], events) if events else "",
    )


def _lead(leader: str | None, a: str, b: str, lag_s: float) -> str:
    if leader is None:
        return "–"
    return f"{'a' if leader == a else 'b'} leads by {abs(lag_s):g} s"


def _seconds(phase: dict[str, Any]) -> float | None:
    if not phase.get("start") or not phase.get("end"):
        return None
    return round((pd.Timestamp(phase["end"]) - pd.Timestamp(phase["start"])).total_seconds(), 3)
