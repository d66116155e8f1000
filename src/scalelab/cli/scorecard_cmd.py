"""`scalelab scorecard RUN...`: autoscaling policies on the same load, ranked, and a page
(`comparisons/…-scorecard-…/scorecard.html`) with their scale and latency over time."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scalelab.analysis.lookup import find_runs
from scalelab.analysis.scorecard import COLUMNS, Scorecard
from scalelab.analysis.scorecard import scorecard as make_scorecard
from scalelab.analysis.scorecard_charts import write_scorecard
from scalelab.analysis.units import seconds
from scalelab.cli.common import console, handle_errors


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@handle_errors
def scorecard(
    runs: Annotated[
        list[str],
        typer.Argument(help="Runs: ids, prefixes, names, `latest`, or directories.", metavar="RUN"),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (for jq and scripts).")
    ] = False,
) -> None:
    """Rank runs that differ only in the autoscaler policy: SLO first, then resources, energy;
    write a page with each policy's replicas against the load and latency against the SLO."""
    dirs = find_runs(runs)
    card = make_scorecard(dirs)
    page = write_scorecard(card, dirs)
    if as_json:
        print(json.dumps({**card.to_dict(), "page": str(page)}, indent=2))
        return
    table = Table(*(heading for heading, _ in COLUMNS), title="autoscaler scorecard")
    for s in card.scores:
        table.add_row(
            str(s.rank),
            escape(s.policy),
            escape(s.run),
            _n(s.slo_violation_s, 0),
            _n(s.replica_seconds),
            _n(s.energy_j),
            str(s.rescales),
            _n(s.first_scale_up_s),
            _n(s.reaction_s),
            str(s.processed),
        )
    console.print(table)
    for line in _notes(card):
        console.print(line)
    console.print(f"charts: {escape(str(page))}")


def _notes(card: Scorecard) -> list[str]:
    """What the SLO-violation column judged against, and the warnings."""
    judged = sorted({c for s in card.scores for c in s.slo_ceilings})
    lines = [
        "judged per second of the load phase against: "
        + ", ".join(escape(c.label(seconds(c.limit_s))) for c in judged)
    ]
    lines += [
        f"[yellow]warning:[/] {escape(s.run)} has no finished load phase in run.json: "
        "its SLO is not judged and it ranks last"
        for s in card.scores
        if s.slo_violation_s is None
    ]
    if not card.same_load:
        lines.append("[yellow]warning:[/] the runs' load or source differ: not the same trace")
    return lines
