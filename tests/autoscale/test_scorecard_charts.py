"""The scorecard's page: each policy's replicas against the offered load and its latency
against the SLO ceiling, overlaid, in HTML (offline) and PNG, beside the ranking.

Two run directories in the on-disk formats (the synthetic writer, then the autoscaler's
own `autoscaler.json` and `decisions.parquet`), on one step load of 10 then 30 msg/s:
`ds2` keeps up, `hpa` has one queue of 20 msg/s and its latency grows in the step.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from scalelab import paths
from scalelab.analysis.scorecard import scorecard
from scalelab.analysis.scorecard_charts import write_scorecard
from scalelab.analysis.synthetic import T0_NS, Synthetic, write_run
from scalelab.autoscale.decisions import Decision, write_decisions
from scalelab.autoscale.summary import autoscale_summary
from scalelab.cli.scorecard_cmd import scorecard as scorecard_command

STEP_AT_S = 15.0  # the offered load goes from 10 to 30 msg/s (traffic started at 0)
TIMELINES = {
    "ds2": [(0.0, 1), (14.5, 2), (16.2, 3), (38.1, 3)],
    "hpa": [(0.0, 1), (25.0, 2), (38.0, 2)],
}
CAPACITY = {"ds2": None, "hpa": 20.0}


def make_run(root: Path, policy: str) -> Path:
    run = Synthetic(
        run_id=f"20261128T210000Z-{policy}-000000",
        steps=[(10.0, STEP_AT_S), (30.0, 20.0)],
        capacity=CAPACITY[policy],
        slo={"latency_p95": 1.0},
    )
    run_dir = write_run(root / policy, run)
    _step_target_rate(run_dir)
    timeline = TIMELINES[policy]
    decisions = [
        _decision(policy, t, before, after)
        for (_, before), (t, after) in zip(timeline, timeline[1:], strict=False)
        if after != before
    ]
    summary = autoscale_summary(policy, decisions, timeline)
    write_decisions(run_dir / "decisions.parquet", decisions)
    (run_dir / "autoscaler.json").write_text(json.dumps(summary))
    record = json.loads((run_dir / "run.json").read_text())
    record["results"] = {"autoscaler": summary, "decisions": "decisions.parquet"}
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def _decision(policy: str, t: float, current: int, target: int) -> Decision:
    at = T0_NS + int(t * 1e9)
    action = "scale-up" if target > current else "scale-down"
    return Decision(at, t, policy, "{}", current, target, target, action, "test",
                    at, at + 100_000_000, at + 900_000_000)  # fmt: skip


def _step_target_rate(run_dir: Path) -> None:
    """The producer's target-rate gauge follows the step (the writer keeps it constant)."""
    metrics = pq.read_table(run_dir / "metrics.parquet")
    frame = metrics.to_pandas()
    gauge = frame["metric"] == "scalelab_producer_target_rate"
    after = frame["timestamp"] >= pd.Timestamp(T0_NS + int(STEP_AT_S * 1e9), unit="ns", tz="UTC")
    frame.loc[gauge & after, "value"] = 30.0
    table = pa.Table.from_pandas(frame, schema=metrics.schema, preserve_index=False)
    pq.write_table(table, run_dir / "metrics.parquet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("scorecard")
    return [make_run(root, "hpa"), make_run(root, "ds2")]


@pytest.fixture(scope="module")
def page(runs: list[Path]) -> Path:
    return write_scorecard(scorecard(runs), runs)


def chart_data(page: Path) -> dict[str, dict[str, Any]]:
    found = re.search(
        r'<script type="application/json" id="chart-data">(.*?)</script>', page.read_text(), re.S
    )
    assert found is not None
    return {c["id"]: c for c in json.loads(found.group(1))}


def traces(chart: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in chart["data"]}


def test_the_page_is_written_beside_the_comparisons_and_ranks_the_policies(page: Path) -> None:
    assert page.name == "scorecard.html"
    assert page.parent.parent == paths.runs_dir() / "comparisons"
    assert page.parent.name.startswith("2-scorecard-")
    html = page.read_text()
    ranking = re.search(r"<h2>Ranking</h2>\s*<table>(.*?)</table>", html, re.S)
    assert ranking is not None
    policies = re.findall(r"<tr><td class=\"num\">(\d)</td><td>(\w+)</td>", ranking.group(1))
    assert policies == [("1", "ds2"), ("2", "hpa")]
    assert "Plotly.newPlot" in html and "<script src" not in html  # offline: plotly inlined


def test_each_policy_scale_is_drawn_as_its_timeline_against_the_offered_load(page: Path) -> None:
    scale = traces(chart_data(page)["chart-scorecard-scale"])
    for policy, timeline in TIMELINES.items():
        assert scale[policy]["x"] == [t for t, _ in timeline]
        assert scale[policy]["y"] == [n for _, n in timeline]
        assert scale[policy]["line"]["shape"] == "hv"  # steps: a scale holds until the next
    load = scale["offered load"]  # once: both runs ran the same trace
    assert load["yaxis"] == "y2"
    offered = dict(zip(load["x"], load["y"], strict=True))
    assert offered[5.0] == 10.0 and offered[13.0] == 10.0  # a gauge: its value at each step's end
    assert offered[STEP_AT_S + 1] == 30.0 and offered[30.0] == 30.0


def test_latency_is_drawn_with_the_slo_ceiling_and_shows_the_violation_seconds(
    page: Path, runs: list[Path]
) -> None:
    latency = traces(chart_data(page)["chart-scorecard-latency"])
    ceiling = latency["SLO p95 ceiling 1 s"]
    assert ceiling["y"] == [1000.0, 1000.0]
    violations = {s.policy: s.slo_violation_s for s in scorecard(runs).scores}
    assert violations["ds2"] == 0 and violations["hpa"] > 5
    for policy in ("ds2", "hpa"):
        points = [y for y in latency[policy]["y"] if y is not None]
        assert len(points) == 35  # one a second of traffic (warmup and load)
        assert sum(y > 1000 for y in points) == violations[policy]
    hpa = zip(latency["hpa"]["x"], latency["hpa"]["y"], strict=True)
    first_slow = next(x for x, y in hpa if y is not None and y > 1000)
    assert first_slow > STEP_AT_S  # the queue builds in the 30 msg/s step, not before


def test_the_charts_are_written_as_png_and_svg_too(page: Path) -> None:
    plots = page.parent / "plots"
    for name in ("scorecard-scale", "scorecard-latency"):
        assert (plots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (plots / f"{name}.svg").read_text()
        assert "<!-- ds2 -->" in svg and "<!-- hpa -->" in svg  # each policy in the legend
    assert "<!-- offered load -->" in (plots / "scorecard-scale.svg").read_text()
    assert "<!-- SLO p95 ceiling 1000 ms -->" in (plots / "scorecard-latency.svg").read_text()


def test_without_plotly_the_page_embeds_the_pngs(
    runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scalelab.analysis import htmlkit

    monkeypatch.setattr(htmlkit, "has_plotly", lambda: False)
    html = write_scorecard(scorecard(runs), runs, tmp_path / "card.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == 2 and "Plotly" not in html


def test_a_run_without_an_autoscaler_keeps_its_workers(runs: list[Path], tmp_path: Path) -> None:
    fixed = write_run(tmp_path / "fixed", replace(Synthetic(), run_id="fixed-run", workers=3))
    page = write_scorecard(scorecard([runs[0], fixed]), [runs[0], fixed], tmp_path / "p.html")
    scale = traces(chart_data(page)["chart-scorecard-scale"])
    assert scale["fixed"]["x"] == [0.0, 35.0] and scale["fixed"]["y"] == [3.0, 3.0]


def test_the_command_prints_where_the_page_is(runs: list[Path]) -> None:
    app = typer.Typer()
    app.command()(scorecard_command)
    as_json = CliRunner().invoke(app, [str(r) for r in runs] + ["--json"])
    assert as_json.exit_code == 0, as_json.output
    card = json.loads(as_json.output)
    assert set(card) == {"same_load", "scores", "page"}
    assert Path(card["page"]).is_file() and [s["policy"] for s in card["scores"]] == ["ds2", "hpa"]
    table = CliRunner().invoke(app, [str(r) for r in runs], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert f"charts: {card['page']}" in table.output
