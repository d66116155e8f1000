"""`scalelab report` and `scalelab compare` through Typer, on synthetic runs."""

from __future__ import annotations

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
    assert (tmp_path / next(iter(RUNS)) / "comparison.html").exists()


def test_an_unknown_run_exits_2_naming_the_closest(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["compare", "20260913T100000Z-synthetic-aaaaab"])
    assert result.exit_code == 2
    assert "did you mean" in result.output and "aaaaaa" in result.output
