"""The report in a real browser: headless Chromium renders it offline, every chart is drawn,
no script fails, and a screenshot shows it.

Skipped when Chromium is not installed (`apt-get install -y --no-install-recommends chromium`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from scalelab.analysis.analyse import analyse_run
from scalelab.analysis.report import build_report
from scalelab.analysis.synthetic import Synthetic, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install -y --no-install-recommends chromium)",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_run(tmp_path_factory.mktemp("browser") / "run", Synthetic(load_s=20))
    assert analyse_run(run_dir)["result"] == "VALID"
    return run_dir / "report.html"


def test_every_chart_in_the_report_is_drawn_without_a_console_error(
    report: Path, tmp_path: Path
) -> None:
    done = chromium(
        tmp_path / "profile",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        "--dump-dom",
        report.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body is not None, done.stdout[:500]
    charts = len(re.findall(r'<div class="chart" id="chart-', report.read_text()))
    assert charts == 9  # rates, latency, lag, per worker, CPU, power, energy/frame, CDF, histogram
    assert f'data-charts="{charts}"' in body.group(0)
    assert f'data-charts-rendered="{charts}"' in body.group(0)
    assert 'data-errors="0"' in body.group(0)
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console  # console.error and uncaught errors are logged here
    # every chart's div holds Plotly's drawing with its title
    for title in (
        "Offered, sent and completed rate",
        "Latency CDF (load phase)",
        "Throughput per worker",
    ):
        assert f">{title}<" in done.stdout


def test_the_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,3000",
        "--virtual-time-budget=15000",
        report.as_uri(),
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(mpimg.imread(shot))[..., :3]
    assert pixels.shape[:2] == (3000, 1280)
    # the charts start below the key parameters, verdict and summary: their lines are coloured
    charts = pixels[1300:3000]
    coloured = (charts.max(axis=2) - charts.min(axis=2)) > 0.3
    assert coloured.mean() > 0.002
    assert pixels.std() > 0.05  # a blank page has no variance
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, plots and colours


def test_a_saturated_step_run_shows_its_step_table_and_reason(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    steps = Synthetic(steps=[(10.0, 15.0), (40.0, 15.0)], warmup_s=5, load_s=25, rate=28.0,
                      capacity=20.0)  # fmt: skip
    run_dir = write_run(tmp_path_factory.mktemp("steps") / "run", steps)
    assert analyse_run(run_dir)["result"] == "INVALID"
    done = chromium(
        tmp_path / "profile",
        "--virtual-time-budget=15000",
        "--dump-dom",
        (run_dir / "report.html").as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Per step (load phase)" in dom and 'data-errors="0"' in dom
    assert re.search(r"saturated: step 2 \(offered 40\.00 msg/s", dom)
    assert dom.count('<span class="missed">saturated</span>') == 1


def test_the_comparison_page_draws_its_overlays_and_links_each_report(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    root = tmp_path_factory.mktemp("compare")
    dirs = [
        write_run(root / run_id, Synthetic(run_id=run_id, workers=workers, load_s=10))
        for run_id, workers in (("20260913T100000Z-a-aaaaaa", 1), ("20260913T110000Z-b-bbbbbb", 2))
    ]
    for run_dir in dirs:
        analyse_run(run_dir)
    page = build_report(dirs, tmp_path / "cmp" / "comparison.html")
    done = chromium(
        tmp_path / "profile",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        "--dump-dom",
        page.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body is not None
    assert 'data-charts="3"' in body.group(0) and 'data-charts-rendered="3"' in body.group(0)
    assert 'data-errors="0"' in body.group(0)
    assert not [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    for run_dir in dirs:  # each run's report, reachable from the comparison's directory
        link = re.search(rf'href="([^"]*{run_dir.name}/report.html)"', done.stdout)
        assert link is not None and (page.parent / link.group(1)).resolve().is_file()
