"""The report marks each fault's window on every time chart: a red band from its start to
its end, labelled with the fault (and the worker it hit); a fault with no end, and every
other event (a killed worker), stays a dashed line. The PNG plots draw the same bands.

A run directory in the on-disk formats (the synthetic writer) whose run.json holds what
a chaos schedule records: `results.chaos` windows and the `chaos-*` begin/end events.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from scalelab.analysis.analyse import analyse_run
from scalelab.analysis.synthetic import Synthetic, write_run

RUN = Synthetic(load_s=30, kill=(12.0, 1, 2.0))
# (kind, start s, end s or None, what was done at its begin) in seconds since traffic started
FAULTS = [
    ("network-delay", 8.0, 14.5, "proxy :41234: delay 200 ms"),
    ("pause-worker", 20.0, 25.0, "SIGSTOP worker-1 (pid 4242)"),
    ("restart-broker", 30.0, None, "broker stopped"),  # the run ended before it came back
]
BANDS = {"network-delay": (8.0, 14.5), "pause-worker worker-1": (20.0, 25.0)}
LINES = {"restart-broker": 30.0, "kill-worker": 12.0}
TIME_CHARTS = {"chart-rates", "chart-latency", "chart-lag", "chart-workers", "chart-cpu",
               "chart-power", "chart-energy"}  # fmt: skip


def stamp(seconds: float) -> str:
    return pd.Timestamp(RUN.at(seconds), tz="UTC").isoformat()


def chaos_record(run_dir: Path) -> None:
    """What ChaosSchedule.to_list() and its events put in run.json."""
    record = json.loads((run_dir / "run.json").read_text())
    windows = []
    for kind, start, end, begin in FAULTS:
        windows.append({"kind": kind, "at": start, "duration": 5.0, "start_ns": RUN.at(start),
                        "end_ns": None if end is None else RUN.at(end), "begin": begin,
                        "end": "" if end is None else "cleared"})  # fmt: skip
        record["events"].append(
            {"time": stamp(start), "kind": f"chaos-{kind}", "detail": f"begin: {begin}",
             "component": "chaos"})  # fmt: skip
        if end is not None:
            record["events"].append(
                {"time": stamp(end), "kind": f"chaos-{kind}", "detail": "end: cleared",
                 "component": "chaos"})  # fmt: skip
    record["results"]["chaos"] = windows
    (run_dir / "run.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write_run(tmp_path_factory.mktemp("chaos") / "run", RUN)
    chaos_record(directory)
    analyse_run(directory)
    return directory


def time_charts(run_dir: Path) -> dict[str, dict[str, Any]]:
    html = (run_dir / "report.html").read_text()
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert data is not None
    return {c["id"]: c for c in json.loads(data.group(1)) if c["linked"]}


def test_every_time_chart_has_a_band_over_each_fault_window(run_dir: Path) -> None:
    charts = time_charts(run_dir)
    assert set(charts) == TIME_CHARTS
    for chart in charts.values():
        layout = chart["layout"]
        bands = {s["name"]: (s["x0"], s["x1"]) for s in layout["shapes"] if s.get("name")}
        assert bands == BANDS
        labels = {a["text"]: a["x"] for a in layout["annotations"]}
        for name, (start, end) in BANDS.items():
            assert labels[name] == pytest.approx((start + end) / 2)  # labelled over its band
        hover = {a["text"]: a.get("hovertext") for a in layout["annotations"]}
        assert hover["pause-worker worker-1"] == "SIGSTOP worker-1 (pid 4242); cleared"


def test_a_fault_without_an_end_and_other_events_stay_lines(run_dir: Path) -> None:
    for chart in time_charts(run_dir).values():
        layout = chart["layout"]
        lines = sorted(s["x0"] for s in layout["shapes"] if s["type"] == "line")
        assert lines == sorted(LINES.values())  # no line at a window's begin or end event
        labels = {a["text"]: a["x"] for a in layout["annotations"]}
        for name, at in LINES.items():
            assert labels[name] == pytest.approx(at)


def test_the_png_plots_draw_the_fault_bands(run_dir: Path) -> None:
    plots = sorted((run_dir / "plots").glob("*.svg"))
    timed = [p for p in plots if p.stem in {"rate", "throughput", "latency", "consumer_lag",
                                            "cpu", "power"}]  # fmt: skip
    assert len(timed) == 6
    for svg in timed:
        text = svg.read_text()
        assert "fill: #e53935" in text  # the band's colour
        for label in (*BANDS, *LINES):
            assert f"<!-- {label} -->" in text  # in the legend
        assert "<!-- chaos-pause-worker -->" not in text
