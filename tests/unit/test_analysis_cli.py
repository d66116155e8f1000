"""`scalelab report` and `scalelab compare` through Typer, on synthetic runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.cli.compare_cmd import compare
from scalelab.cli.report_cmd import report

RUNS = {"20260913T100000Z-synthetic-aaaaaa": 1, "20260913T110000Z-synthetic-bbbbbb": 2}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    for run_id, workers in RUNS.items():
        write_run(tmp_path / run_id, Synthetic(run_id=run_id, workers=workers, load_s=10))
    monkeypatch.setenv("SCALELAB_RUNS", str(tmp_path))
    cli = typer.Typer()
    cli.command()(report)
    cli.command()(compare)
    return cli


def test_compare_prints_differing_parameters_and_figures(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["compare", *RUNS], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "workload.workers" in result.output
    assert "throughput" in result.output and "latency p99" in result.output


def test_report_rebuilds_each_run_and_the_comparison(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", *RUNS], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert result.output.count("VALID") == 2
    for run_id in RUNS:
        assert (tmp_path / run_id / "report.html").exists()
    assert not (tmp_path / next(iter(RUNS)) / "comparison.html").exists()
    pages = list((tmp_path / "comparisons").glob("*/comparison.html"))
    assert len(pages) == 1 and "comparison" in result.output
    html = pages[0].read_text()
    for run_id in RUNS:  # links to each run's own report, relative to the comparison's directory
        assert f'href="../../{run_id}/report.html"' in html
    for chart in ("chart-compare-cdf", "chart-compare-throughput", "chart-compare-p99"):
        assert f'id="{chart}"' in html


def test_compare_json_gives_figures_and_changes_against_the_first_run(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["compare", *RUNS, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    first, second = RUNS
    assert data["baseline"] == first and data["runs"] == [first, second]
    assert data["differing"]["workload.workers"] == [1, 2]
    figures, change = data["figures"], data["deltas"][second]["throughput"]
    assert change["delta"] == pytest.approx(
        figures[second]["throughput"] - figures[first]["throughput"]
    )
    assert change["percent"] == pytest.approx(change["delta"] / figures[first]["throughput"] * 100)


def test_latest_and_a_name_work_where_a_run_id_is_expected(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["compare", "latest~1", "latest"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert all(run_id in result.output for run_id in RUNS)
    assert "(+" in result.output or "(-" in result.output


def test_an_unknown_run_exits_2_naming_the_closest(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["compare", "20260913T100000Z-synthetic-aaaaab"])
    assert result.exit_code == 2
    assert "did you mean" in result.output and "aaaaaa" in result.output
