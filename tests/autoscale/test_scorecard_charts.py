"""The scorecard's page: each policy's replicas against the offered load and its latency
against the SLO ceiling, overlaid, in HTML (offline) and PNG, beside the ranking, which
links each run's report.

Two run directories in the on-disk formats (the synthetic writer, then the autoscaler's
own `autoscaler.json` and `decisions.parquet`), on one step load of 10 then 30 msg/s
(5 s of warmup, then 30 s of load): `ds2` keeps up, `hpa` has one queue of 20 msg/s and
its latency grows in the step.
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
LOAD_FROM_S, LOAD_TO_S = 5.0, 35.0  # the load phase (the synthetic writer's warmup is 5 s)
TIMELINES = {
    "ds2": [(0.0, 1), (14.5, 2), (16.2, 3), (38.1, 3)],
    "hpa": [(0.0, 1), (25.0, 2), (38.0, 2)],
}
CAPACITY = {"ds2": None, "hpa": 20.0}


def make_run(root: Path, policy: str, slo: dict[str, float] | None = None) -> Path:
    run = Synthetic(
        run_id=f"20261128T210000Z-{policy}-000000",
        steps=[(10.0, STEP_AT_S), (30.0, 20.0)],
        capacity=CAPACITY[policy],
        slo={"latency_p95": 1.0} if slo is None else slo,
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


def test_the_ranking_links_each_run_report(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / "a", "hpa"), make_run(tmp_path / "b", "ds2")]
    (runs[0] / "report.html").write_text("<html>hpa's report</html>")
    page = write_scorecard(scorecard(runs), runs, tmp_path / "pages" / "card.html")
    ranking = re.search(r"<h2>Ranking</h2>\s*<table>(.*?)</table>", page.read_text(), re.S)
    assert ranking is not None
    assert "<th>report</th>" in ranking.group(1)
    rows = dict(
        re.findall(r"<tr><td class=\"num\">\d</td><td>(\w+)</td>(.*?)</tr>", ranking.group(1))
    )
    href = re.search(r'<a href="([^"]+)">report</a>', rows["hpa"])
    assert href is not None and not Path(href.group(1)).is_absolute()  # survives a moved tree
    assert (page.parent / href.group(1)).read_text() == "<html>hpa's report</html>"
    assert "no report yet" in rows["ds2"] and "<a " not in rows["ds2"]


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
    chart = chart_data(page)["chart-scorecard-latency"]
    assert chart["layout"]["yaxis"]["title"]["text"] == "latency p95 (ms)"
    latency = traces(chart)
    ceiling = latency["SLO p95 ceiling 1 s"]
    assert ceiling["y"] == [1000.0, 1000.0]
    violations = {s.policy: s.slo_violation_s for s in scorecard(runs).scores}
    assert violations["ds2"] == 0 and violations["hpa"] > 5
    for policy in ("ds2", "hpa"):
        points = [y for y in latency[policy]["y"] if y is not None]
        assert len(points) == 30  # one a second of the load phase: the warmup is not judged
        assert latency[policy]["x"][0] == LOAD_FROM_S and latency[policy]["x"][-1] < LOAD_TO_S
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


def test_a_p99_slo_is_drawn_and_judged_at_p99(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / p, p, slo={"latency_p99": 1.0}) for p in ("hpa", "ds2")]
    page = write_scorecard(scorecard(runs), runs, tmp_path / "card.html")
    chart = chart_data(page)["chart-scorecard-latency"]
    assert chart["layout"]["yaxis"]["title"]["text"] == "latency p99 (ms)"
    latency = traces(chart)
    assert "SLO p99 ceiling 1 s" in latency and "SLO p95 ceiling 1 s" not in latency
    for s in scorecard(runs).scores:
        points = [y for y in latency[s.policy]["y"] if y is not None]
        assert sum(y > 1000 for y in points) == s.slo_violation_s
    hpa = dict(zip(latency["hpa"]["x"], latency["hpa"]["y"], strict=True))
    assert max(hpa.values()) > 1000  # the queue's tail crosses the p99 ceiling
    svg = (tmp_path / "plots" / "scorecard-latency.svg").read_text()
    assert "<!-- SLO p99 ceiling 1000 ms -->" in svg


def test_without_a_latency_slo_the_line_is_the_default_ceiling(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / p, p, slo={}) for p in ("hpa", "ds2")]
    page = write_scorecard(scorecard(runs), runs, tmp_path / "card.html")
    names = set(traces(chart_data(page)["chart-scorecard-latency"]))
    assert "default p95 ceiling 1 s (no latency SLO)" in names
    assert not any(name.startswith("SLO") for name in names)
    svg = (tmp_path / "plots" / "scorecard-latency.svg").read_text()
    assert "<!-- default p95 ceiling 1000 ms (no latency SLO) -->" in svg


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


def test_with_both_percentiles_each_is_drawn_against_its_own_ceiling(tmp_path: Path) -> None:
    slo = {"latency_p95": 1.0, "latency_p99": 2.0}
    runs = [make_run(tmp_path / p, p, slo=slo) for p in ("hpa", "ds2")]
    page = write_scorecard(scorecard(runs), runs, tmp_path / "card.html")
    chart = chart_data(page)["chart-scorecard-latency"]
    assert chart["layout"]["yaxis"]["title"]["text"] == "latency p95 and p99 (ms)"
    latency = traces(chart)
    assert {"SLO p95 ceiling 1 s", "SLO p99 ceiling 2 s"} <= set(latency)
    assert latency["hpa p99"]["line"]["dash"] == "dash"  # told apart from p95 by more than colour
    hpa = scorecard(runs).scores[-1]
    assert hpa.policy == "hpa"
    p95 = dict(zip(latency["hpa p95"]["x"], latency["hpa p95"]["y"], strict=True))
    p99 = dict(zip(latency["hpa p99"]["x"], latency["hpa p99"]["y"], strict=True))
    assert p95.keys() == p99.keys()
    assert sum(p95[t] > 1000 or p99[t] > 2000 for t in p95) == hpa.slo_violation_s


def test_the_scale_axis_says_what_was_scaled(page: Path, tmp_path: Path) -> None:
    """Workers for YOLO runs; a Flink job's parallelism when the autoscaler scaled that."""
    layout = chart_data(page)["chart-scorecard-scale"]["layout"]
    assert layout["yaxis"]["title"]["text"] == "replicas (workers)"
    flink = make_run(tmp_path, "ds2")
    summary = json.loads((flink / "autoscaler.json").read_text())
    (flink / "autoscaler.json").write_text(json.dumps({**summary, "scale_unit": "parallelism"}))
    chart = chart_data(write_scorecard(scorecard([flink]), [flink]))["chart-scorecard-scale"]
    assert chart["layout"]["yaxis"]["title"]["text"] == "parallelism (Flink job)"
    assert traces(chart)["ds2"]["hovertemplate"].count("parallelism") >= 1
