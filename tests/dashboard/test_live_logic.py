"""The live view's logic without a run: rates over a window, the follower, the server, PromQL.

The PromQL is checked by a real Prometheus (Debian's, started here on a free
port with no targets): every panel's query must parse and evaluate.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rich.console import Console

from scalelab.live import grafana, queries
from scalelab.live.follow import START_FILE, RunFollower, RunState
from scalelab.live.prom import Prometheus
from scalelab.live.server import Dashboard, start_dashboard
from scalelab.live.snapshot import MAX_POINTS, grid, snapshot
from scalelab.platform.local.prometheus import is_ready
from scalelab.platform.ports import free_port
from scalelab.platform.process import wait_until
from scalelab.run import progress
from scalelab.run.record import Phase, RunRecord


def write_run(root: Path, name: str, pid: int | None = None, **fields: Any) -> Path:
    record = RunRecord(id=name, name="live", **fields)
    record.claim()
    if pid is not None:
        record.owner["pid"] = pid
    run_dir = root / name
    record.write(run_dir)
    (run_dir / "spec.yaml").write_text(
        "monitoring:\n  scrape_interval: 2.0\nload:\n  warmup: 5.0\n"
    )
    return run_dir


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- terminal view -----------------------------------------------------------------------------
def test_a_poisson_load_at_6_per_s_reads_about_6_not_a_half_second_burst() -> None:
    rng = np.random.default_rng(7)
    counts = np.cumsum(rng.poisson(6 * 0.5, size=60))  # ticks every 0.5 s, 30 s
    window = progress.Window()
    two_tick, windowed = [], []
    for n, count in enumerate(counts):
        window.add(n * 0.5, float(count))
        if n >= 10:
            windowed.append(window.rate())
            two_tick.append((counts[n] - counts[n - 1]) / 0.5)
    assert max(two_tick) >= 10  # what the old view showed at times
    assert all(r is not None and 3.5 <= r <= 8.5 for r in windowed)
    assert len(window.samples) <= 12  # old samples are dropped


def test_without_a_terminal_it_prints_a_plain_line_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with progress.LiveView(console, duration=20) as view:
        view.phase("setup", "broker, Prometheus, node exporter")
        view.step("broker: ready in 1.2 s")
        for n in range(41):  # 20 s of ticks at 6 messages a second
            clock.now += 0.5
            view.update("load", n * 0.5, 3 * n, lag=2)
        view.phase("drain")
        for n in range(11):  # 10 messages drained each second
            clock.now += 1.0
            view.tick(lag=100 - 10 * n)
    text = out.getvalue()
    assert "setup broker, Prometheus, node exporter" in text
    assert "· broker: ready in 1.2 s" in text
    load_lines = [t for t in text.splitlines() if t.startswith("load ")]
    assert 3 <= len(load_lines) <= 6  # every 5 s, not every tick
    assert "sent 6.0/s" in load_lines[-1] and "lag 2" in load_lines[-1]
    assert "/20 s" in load_lines[-1]
    drain_lines = [t for t in text.splitlines() if t.startswith("drain ")]
    assert drain_lines and "draining 10.0/s" in drain_lines[-1] and "lag 0" in drain_lines[-1]


def test_on_a_terminal_it_redraws_one_line_and_leaves_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with progress.LiveView(console, duration=10) as view:
        for n in range(21):
            clock.now += 0.5
            view.update("load", n * 0.5, 2 * n, lag=0)
    assert "sent 4.0/s" in out.getvalue()


def test_the_line_leaves_out_what_is_not_known() -> None:
    text = progress.line("load", "", progress.Figures(elapsed=3.0, target=6.0, p99=0.25), 60)
    assert text.split() == ["load", "3/60", "s", "target", "6.0/s", "p99", "0.25", "s"]


# -- following a run ---------------------------------------------------------------------------
def test_the_follower_shows_this_process_newest_run_only(tmp_path: Path) -> None:
    write_run(tmp_path, "20260101T000000Z-a")
    mine = write_run(tmp_path, "20260101T000100Z-b")
    theirs = write_run(tmp_path, "20260101T000200Z-c", pid=os.getpid() + 1)
    os.utime(theirs, (2e9, 2e9))  # the newest directory, but another process's run
    state = RunFollower(runs=tmp_path).current()
    assert state is not None and state.dir == mine and state.scrape_interval_s == 2.0
    assert RunFollower(runs=tmp_path / "none").current() is None


def test_a_stack_s_page_follows_the_runs_that_reuse_its_prometheus(tmp_path: Path) -> None:
    stack = write_run(tmp_path, "1-up", endpoints={"prometheus": "http://127.0.0.1:9090"})
    follower = RunFollower(runs=tmp_path, run_dir=stack)
    assert getattr(follower.current(), "dir", None) == stack
    other = write_run(tmp_path, "2-other", endpoints={"prometheus": "http://127.0.0.1:9999"})
    reusing = write_run(tmp_path, "3-run", endpoints={"prometheus": "http://127.0.0.1:9090"})
    os.utime(other, (3e9, 3e9))
    os.utime(reusing, (2e9, 2e9))
    assert getattr(follower.current(), "dir", None) == reusing


def test_faults_become_bands_closed_by_the_group_change_they_cause(tmp_path: Path) -> None:
    events = [
        {"time": "2026-01-01T00:00:10.000Z", "kind": "kill-worker", "detail": "x",
         "component": "worker-1"},
        {"time": "2026-01-01T00:00:13.500Z", "kind": "group-member-left", "detail": "y"},
    ]  # fmt: skip
    phases = [Phase("setup", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:04.000Z")]
    run_dir = write_run(tmp_path, "r", events=events, phases=phases)
    state = RunFollower(run_dir=run_dir).current()
    assert state is not None
    (fault,) = state.faults
    assert fault.label == "kill-worker worker-1" and fault.end == fault.start + 3.5
    assert [(p.label, p.end is None) for p in state.phases] == [("setup", False)]


def test_warmup_and_load_show_while_they_go_on(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r")
    start_ns = 1_000_000_000_000_000_000  # long ago: the warmup (5 s) is over
    (run_dir / START_FILE).write_text(json.dumps({"start_ns": start_ns}))
    state = RunFollower(run_dir=run_dir).current()
    assert state is not None
    assert [(b.label, b.start, b.end) for b in state.phases] == [
        ("warmup", 1e9, 1e9 + 5),
        ("load", 1e9 + 5, None),
    ]


def test_faults_of_the_spec_show_once_their_time_has_come(tmp_path: Path) -> None:
    """run.json lists a fault only from its next save: until then the spec places it."""
    run_dir = write_run(tmp_path, "r")
    (run_dir / "spec.yaml").write_text(
        "faults:\n- {kind: kill-worker, at: 15.0, worker: 1}\n- {kind: kill-worker, at: 1e12}\n"
    )
    (run_dir / START_FILE).write_text(json.dumps({"start_ns": 1_000_000_000_000_000_000}))
    state = RunFollower(run_dir=run_dir).current()
    assert state is not None
    assert [(b.label, b.start, b.end) for b in state.faults] == [
        ("kill-worker #1", 1e9 + 15, 1e9 + 15)
    ]


def test_the_producer_start_file_name_is_the_producer_s() -> None:
    from scalelab.components.producer import START_FILE as producers

    assert producers == START_FILE


# -- snapshot and server -----------------------------------------------------------------------
def test_the_grid_ends_exactly_at_now_and_stays_small() -> None:
    for span in (0.0, 7.3, 3600.0, 86400.0):
        start, step = grid(1000.0, 1000.0 + span, 1.0)
        points = round((1000.0 + span - start) / step) + 1
        assert start >= 1000.0 - 1e-6 and points <= MAX_POINTS + 1
        assert abs(start + (points - 1) * step - (1000.0 + span)) < 1e-6


def test_a_prometheus_that_does_not_answer_is_said_so(tmp_path: Path) -> None:
    state = RunFollower(run_dir=write_run(tmp_path, "r")).current()
    assert state is not None
    gone = Prometheus(f"http://127.0.0.1:{free_port()}")
    body = snapshot(state, gone)
    assert "does not answer" in body["message"]
    assert all(not p["lines"] for p in body["panels"])
    assert "not up yet" in snapshot(state, None)["message"]


def test_the_server_serves_the_page_and_its_data_then_stops(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "20260101T000000Z-live")
    dashboard = Dashboard(RunFollower(run_dir=run_dir)).start()
    url = dashboard.url
    try:
        assert url.startswith("http://127.0.0.1:")
        page = httpx.get(url)
        assert page.status_code == 200 and '<script src="/live.js">' in page.text
        script = httpx.get(url + "live.js")
        assert "text/javascript" in script.headers["content-type"] and "fetch(" in script.text
        assert "http" not in script.text.replace('fetch("/api/live"', "")  # nothing external
        live = httpx.get(url + "api/live").json()
        assert live["run"]["id"] == "20260101T000000Z-live" and "not up yet" in live["message"]
        assert httpx.get(url + "nothing").status_code == 404
    finally:
        dashboard.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    quiet = start_dashboard(serve=False)
    assert quiet.url == ""
    quiet.stop()


def test_the_grafana_files_name_the_run_s_prometheus(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r", endpoints={"prometheus": "http://127.0.0.1:9999"})
    state = RunFollower(run_dir=run_dir).current()
    assert state is not None
    written = grafana.write(state)
    assert written is not None
    board = json.loads(written.read_text())
    assert [p["fieldConfig"]["defaults"]["unit"] for p in board["panels"]] == [
        "reqps", "s", "short", "short", "watt",
    ]  # fmt: skip
    targets = [t for p in board["panels"] for t in p["targets"]]
    assert all(t["datasource"]["uid"] == "scalelab" for t in targets)
    assert any(t["legendFormat"] == "{{component}}" for t in targets)
    assert "url: http://127.0.0.1:9999" in (written.parent / "datasource.yaml").read_text()


# -- PromQL, against a real Prometheus ---------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "prometheus.yml").write_text("global: {scrape_interval: 1s}\n")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: is_ready(url), 30, interval=0.1)
        client = Prometheus(url)
        yield client
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("measured", [False, True])
def test_every_panel_query_is_valid_promql(prometheus: Prometheus, measured: bool) -> None:
    for panel in queries.panels("20260101T000000Z-x", 1.0, measured):
        for query in panel.queries:
            assert prometheus.instant(query.expr) is not None, query.expr
            assert prometheus.range(query.expr, 1e9, 1e9 + 60, 1.0) is not None, query.expr
    assert prometheus.instant(queries.RAPL_PRESENT) == []


def test_a_state_with_no_series_yet_gives_empty_panels(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    state = RunState("r", tmp_path, "running", prometheus.url, 1.0, started=0.0)
    body = snapshot(state, prometheus, now=120.0)
    assert body["energy_source"] == "estimate (CPU power model)"
    assert [p["key"] for p in body["panels"]] == ["rate", "latency", "lag", "cpu", "energy"]
    assert "message" not in body


def test_python_m_scalelab_live_serves_a_run_until_sigterm(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "20260101T000000Z-up")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scalelab.live", str(run_dir), "--metrics-port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"live dashboard http://127.0.0.1:{port}/" in proc.stdout.readline()
        live = httpx.get(f"http://127.0.0.1:{port}/api/live").json()
        assert live["run"]["id"] == "20260101T000000Z-up"
        written = json.loads((run_dir / "live.json").read_text())
        assert written == {"url": f"http://127.0.0.1:{port}/"}
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
