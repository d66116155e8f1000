"""The sweep table, the sustained judgement and the report, from run directories in the
exact on-disk format (`analysis.synthetic`, summaries built by the real `summarise` and
verdicts by the real `verdict`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from scalelab.analysis.synthetic import Synthetic, write_run
from scalelab.analysis.verdict import verdict
from scalelab.sweep import open_sweep
from scalelab.sweep.grid import Cell
from scalelab.sweep.judge import judge
from scalelab.sweep.report import write_report
from scalelab.sweep.state import SweepState
from scalelab.sweep.stats import cell_table
from scalelab.sweep.table import NUMERIC, build_table, write_table


def run(tmp_path: Path, name: str, **knobs: object) -> Path:
    directory = write_run(tmp_path / name, Synthetic(run_id=name, **knobs))  # type: ignore[arg-type]
    summary = json.loads((directory / "summary.json").read_text())
    summary["verdict"] = verdict(directory).to_dict()
    (directory / "summary.json").write_text(json.dumps(summary))
    return directory


def test_judge_tells_a_sustained_rate_from_an_overload_and_a_loss(tmp_path: Path) -> None:
    assert judge(run(tmp_path, "ok", rate=10.0)).sustained
    overloaded = judge(run(tmp_path, "over", rate=20.0, capacity=12.0))
    assert not overloaded.sustained
    assert any(r.startswith("completed") for r in overloaded.reasons), overloaded.reasons
    lossy = judge(run(tmp_path, "lossy", rate=10.0, lost=3))
    assert not lossy.sustained and "3 messages lost" in lossy.reasons
    missed = judge(run(tmp_path, "slow", rate=10.0, slo={"latency_p99": 0.001}))
    assert not missed.sustained and any("SLO latency_p99 missed" in r for r in missed.reasons)
    assert not judge(tmp_path / "absent").sustained


@pytest.fixture
def sweep_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCALELAB_SWEEPS", str(tmp_path / "sweeps"))
    state = SweepState.open(
        tmp_path / "sweeps" / "demo-sweep-0", {"id": "demo-sweep-0", "vary": {"load.rate": []}}
    )
    knobs: dict[tuple[str, int], dict[str, float]] = {
        ("10", 1): {},
        ("10", 2): {"seed": 1},
        ("20", 1): {"capacity": 12.0},
    }
    for (rate, rep), extra in knobs.items():
        cell = Cell((("load.rate", rate),), rep)
        directory = run(tmp_path, f"r{rate}-{rep}", rate=float(rate), **extra)
        state.update(cell, status="succeeded", run_dir=str(directory), started=f"{rate}{rep}")
    runs = build_table(state.runs, ["load.rate"])
    write_table(runs, state.dir)
    cell_table(runs, ["load.rate"], NUMERIC).to_parquet(state.dir / "cells.parquet")
    return state.dir


def test_table_rows_say_what_each_runs_summary_says(sweep_dir: Path) -> None:
    table = open_sweep("demo-sweep-0")
    assert len(table) == 3 and table.attrs["dir"] == str(sweep_dir)
    for row in table.to_dict(orient="records"):
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert row["throughput"] == summary["throughput"]
        assert row["latency_p99_s"] == summary["latency_s"]["p99"]
        assert row["offered_rate"] == summary["rate"]["target_rate"] == row["load.rate"]
        assert row["sustained"] == (row["load.rate"] == 10)


def test_cells_average_repetitions_and_the_report_draws_them(sweep_dir: Path) -> None:
    cells = pd.read_parquet(sweep_dir / "cells.parquet").set_index("config")
    assert cells.loc["load.rate=10", "runs"] == 2 and cells.loc["load.rate=20", "runs"] == 1
    low, high = cells.loc["load.rate=10", ["throughput_lo", "throughput_hi"]]
    assert low <= cells.loc["load.rate=10", "throughput"] <= high
    assert cells.loc["load.rate=20", "sustained"] == 0.0
    html = write_report(sweep_dir).read_text()
    # latency and throughput; no energy chart: synthetic summaries carry no energy figures
    assert html.count("data:image/png;base64,") == 2
    assert all(name in html for name in ("r10-1", "r10-2", "r20-1"))
    assert "Student t, 95 %" in html


def test_an_unknown_sweep_is_a_clear_error(sweep_dir: Path) -> None:
    from scalelab.errors import ConfigError

    with pytest.raises(ConfigError, match="known: demo-sweep-0"):
        open_sweep("nope")
