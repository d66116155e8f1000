"""analyse_run, the self-contained report, and the comparison of several runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scalelab import paths
from scalelab.analysis import analyse as analyse_module
from scalelab.analysis.analyse import analyse_run
from scalelab.analysis.compare import compare
from scalelab.analysis.dataset import Run
from scalelab.analysis.report import build_report
from scalelab.analysis.synthetic import Synthetic, write_run

PLOTS = {"rate", "throughput", "latency", "consumer_lag", "cpu", "power", "stages", "correlation"}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    run_dir = write_run(tmp_path_factory.mktemp("a") / "run", Synthetic(load_s=20))
    return run_dir, analyse_run(run_dir)


def test_analyse_run_returns_the_verdict_and_keeps_the_summary(
    analysed: tuple[Path, dict[str, object]],
) -> None:
    run_dir, result = analysed
    assert result["result"] == "VALID" and result["reasons"] == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == result
    assert summary["energy"]["source"] == "estimate" and summary["energy"]["estimate"]
    assert summary["throughput"] == 10.0  # the existing figures are kept


def test_analyse_run_writes_correlations_and_every_plot(
    analysed: tuple[Path, dict[str, object]],
) -> None:
    run_dir, _ = analysed
    correlations = json.loads((run_dir / "correlations.json").read_text())
    assert correlations["pairs"] and correlations["step_s"] == 1.0
    assert {"series": "power", "reason": analyse_module.ESTIMATED_POWER} in correlations["dropped"]
    assert {p.stem for p in (run_dir / "plots").glob("*.png")} == PLOTS


def test_report_is_self_contained(analysed: tuple[Path, dict[str, object]]) -> None:
    run_dir, _ = analysed
    html = (run_dir / "report.html").read_text()
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert "<script src" not in html and "<link" not in html and "@import" not in markup
    assert not re.search(r"https?://", markup)  # plotly.js is inlined; it names URLs it never uses
    assert "Plotly.newPlot" in html and len(re.findall(r"<script", html)) == 4
    for text in ("VALID", "ESTIMATE", "Per worker", "Accounting", "Run record"):
        assert text in markup
    assert markup.index("key-parameters") < markup.index("Verdict") < markup.index("Summary")
    assert (
        markup.index("Summary") < markup.index("Over time") < markup.index("Latency distribution")
    )


def test_report_charts_carry_units_and_the_slo_with_its_unit(
    analysed: tuple[Path, dict[str, object]],
) -> None:
    run_dir, _ = analysed
    html = (run_dir / "report.html").read_text()
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert data is not None
    charts = {c["id"]: c for c in json.loads(data.group(1))}
    expected = {"chart-rates", "chart-latency", "chart-lag", "chart-workers", "chart-cpu",
                "chart-power", "chart-energy", "chart-cdf", "chart-histogram"}  # fmt: skip
    assert set(charts) == expected
    for chart in charts.values():
        for axis in ("xaxis", "yaxis"):
            title = chart["layout"][axis]["title"]["text"]
            assert re.search(r"\((ms|s|msg/s|frames/s|cores|W|J/frame|messages|%)\)$", title)
        assert all(t["x"] and any(v is not None for v in t["y"]) for t in chart["data"])
    names = [t["name"] for t in charts["chart-latency"]["data"]]
    assert names == ["latency p50", "latency p95", "latency p99", "SLO p99 1 s"]
    workers = {t["name"] for t in charts["chart-workers"]["data"]}
    assert workers == {"worker-0", "worker-1"}
    assert [c["linked"] for c in charts.values()].count(True) == 7
    keys = re.search(r'<div class="keys" id="key-parameters">(.*?)</div></div>', html, re.S)
    assert keys is not None
    for label in ("platform", "workers", "batch", "profile", "SLO latency_p99"):
        assert f"<b>{label}</b>" in keys.group(0)
    assert "<b>SLO latency_p99</b> 1 s" in keys.group(0)


def test_the_figures_for_papers_are_written_as_png_and_svg(
    analysed: tuple[Path, dict[str, object]],
) -> None:
    run_dir, _ = analysed
    assert {p.stem for p in (run_dir / "plots").glob("*.svg")} == PLOTS
    html = (run_dir / "report.html").read_text()
    assert 'href="plots/latency.svg"' in html and 'href="plots/latency.png"' in html


def test_analyse_run_never_raises_on_an_empty_directory(tmp_path: Path) -> None:
    result = analyse_run(tmp_path)
    assert result["result"] == "INVALID"
    assert "no load phase: no time series, correlations or time plots" in result["notes"]
    assert not (tmp_path / "summary.json").exists()  # never half a summary
    written = json.loads((tmp_path / "analysis.json").read_text())
    assert written["energy"]["source"] == "none"
    assert "no data to plot" in (tmp_path / "report.html").read_text()


def test_a_failing_step_becomes_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> dict[str, object]:
        raise RuntimeError("meter on fire")

    monkeypatch.setattr(analyse_module, "energy", broken)
    run_dir = write_run(tmp_path / "run", Synthetic(load_s=10))
    result = analyse_run(run_dir)
    assert "energy failed: RuntimeError: meter on fire" in result["notes"]
    assert result["result"] == "VALID"
    assert (run_dir / "report.html").exists()


def test_compare_shows_the_parameters_that_differ(tmp_path: Path) -> None:
    runs = [
        Run(write_run(tmp_path / name, Synthetic(run_id=name, workers=w, load_s=10)))
        for name, w in (("r1", 1), ("r2", 2), ("r4", 4))
    ]
    comparison = compare(runs)
    assert comparison.differing == {"workload.workers": [1, 2, 4]}
    rows = dict(comparison.rows())
    assert list(rows)[0] == "workload.workers"
    assert rows["workload.workers"] == ["1", "2", "4"]
    assert rows["throughput (completed)"] == ["10.00 frames/s"] * 3
    assert rows["not completed (load phase)"] == ["0"] * 3
    assert rows["verdict"] == ["VALID"] * 3
    assert rows["energy source"] == ["estimate"] * 3


def test_build_report_of_several_runs_writes_a_comparison(tmp_path: Path) -> None:
    dirs = [
        write_run(tmp_path / name, Synthetic(run_id=name, rate=rate, load_s=10))
        for name, rate in (("slow", 5.0), ("fast", 20.0))
    ]
    path = build_report(dirs)
    assert path.parent.parent == paths.runs_dir() / "comparisons"  # its own directory
    assert not (dirs[0] / "comparison.html").exists()
    html = path.read_text()
    assert "load.rate" in html and "5.0" in html and "20.0" in html
    assert "(+300.0 %)" in html  # fast's offered rate against slow's
    assert "data:image/png;base64," in html
    elsewhere = build_report(dirs, tmp_path / "out" / "cmp.html")
    assert elsewhere.exists()
