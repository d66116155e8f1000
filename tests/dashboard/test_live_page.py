"""The live page during a REAL run: `scalelab run` in a subprocess, the page in headless Chromium.

The completed rate the page shows is compared with what the run's own
Prometheus answers for the same instant (an instant query the test writes
itself). Then the run is left to finish: the CLI exits 0 and the page's
server is gone.

Skipped when Chromium is not installed (`apt-get install -y --no-install-recommends chromium`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib import image as mpimg

from .browser import CHROMIUM, attributes, chromium, dump_dom, text_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]
REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"
SCREENSHOT = Path(os.environ.get("SCALELAB_LIVE_SCREENSHOT", ""))


class Cli:
    """`scalelab run` in a subprocess; its output collected line by line by a thread."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scalelab.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self.lines.append(text)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in list(self.lines):
                if found := re.search(pattern, text):
                    return found
            assert self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in: {''.join(self.lines)}")

    def output(self) -> str:
        self.reader.join(timeout=10)
        return "".join(self.lines)


def poll_until_completing(cli: Cli, url: str, timeout: float) -> dict[str, Any]:
    """The /api/live body once the page's completed rate is above zero (load is running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert cli.proc.poll() is None, cli.output()
        body = httpx.get(url + "api/live", timeout=10).json()
        completed = line(body, "rate", "completed")
        if completed and (completed["current"] or 0) > 0:
            return dict(body)
        time.sleep(1)
    raise AssertionError(f"the completed rate never rose above 0: {cli.output()}")


def line(body: dict[str, Any], panel_key: str, line_key: str) -> dict[str, Any] | None:
    for panel in body.get("panels", []):
        if panel["key"] == panel_key:
            return next((x for x in panel["lines"] if x["key"] == line_key), None)
    return None


def body_attributes(dom: str) -> dict[str, str]:
    tag = re.search(r"<body[^>]*>", dom)
    assert tag is not None, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


def prometheus_at(prometheus: str, expr: str, at: str) -> float:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr, "time": at})
    (sample,) = response.json()["data"]["result"]
    return float(sample["value"][1])


@pytest.fixture(scope="module")
def cli() -> Any:
    run = Cli(
        "run", str(QUICKSTART), "--set", "load.duration=40s", "--set", "load.warmup=5s",
        "--set", "faults=[{kind: kill-worker, at: 20, worker: 1}]",
    )  # fmt: skip
    yield run
    if run.proc.poll() is None:
        run.proc.send_signal(2)
        try:
            run.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            run.proc.kill()


def test_the_page_shows_the_completed_rate_prometheus_has(cli: Cli, tmp_path: Path) -> None:
    url = cli.wait_for(r"live dashboard (http://127\.0\.0\.1:\d+/)", timeout=120).group(1)
    prometheus = cli.wait_for(r"Prometheus (http://127\.0\.0\.1:\d+)", timeout=300).group(1)
    body = poll_until_completing(cli, url, timeout=300)
    for panel in body["panels"]:  # every panel's PromQL is valid and has data
        assert panel["lines"], panel["key"]
    assert body["energy_source"].startswith(("estimate", "measured"))

    dom = dump_dom(tmp_path / "profile", url)
    figure = attributes(dom, "figure-completed")
    page = body_attributes(dom)
    assert int(page["data-updates"]) >= 1
    run_id = page["data-run"]
    assert run_id == body["run"]["id"]
    assert attributes(dom, "prometheus")["href"] == prometheus

    expr = f'sum(rate(scalelab_tracker_records_total{{run_id="{run_id}"}}[5s]))'
    expected = prometheus_at(prometheus, expr, figure["data-time"])
    assert expected > 0
    assert float(figure["data-value"]) == pytest.approx(expected, rel=1e-9)
    shown = float(text_of(dom, "figure-completed", "value"))
    assert shown == pytest.approx(expected, abs=0.006)
    assert text_of(dom, "figure-completed", "unit") == "msg/s"


def test_the_screenshot_shows_charts(cli: Cli, tmp_path: Path) -> None:
    url = cli.wait_for(r"live dashboard (http://127\.0\.0\.1:\d+/)", timeout=10).group(1)
    shot = SCREENSHOT if SCREENSHOT.name else tmp_path / "live.png"
    done = chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,1100",
        "--virtual-time-budget=5000",
        url,
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(mpimg.imread(shot))[..., :3]
    assert pixels.std() > 0.05
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_the_run_ends_and_takes_the_page_with_it(cli: Cli) -> None:
    url = cli.wait_for(r"live dashboard (http://127\.0\.0\.1:\d+/)", timeout=10).group(1)
    assert cli.proc.wait(timeout=600) == 0, cli.output()
    output = cli.output()
    grafana = Path(re.search(r"Grafana dashboard (\S+)", output).group(1))  # type: ignore[union-attr]
    dashboard = json.loads(grafana.read_text())
    assert len(dashboard["panels"]) == 5
    assert "url: http://127.0.0.1:" in (grafana.parent / "datasource.yaml").read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
