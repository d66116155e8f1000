"""Re-export against real Prometheus processes: a hole stays a hole, a stranger is refused.

The module starts its own Prometheus (never the session's shared one) on a data
directory of its own, scraping a prometheus-client HTTP server in this test
process and itself, both labelled with the run's id, as the local platform does.
It SIGKILLs that Prometheus for a few seconds mid-run, restarts it on the same
data and port, and records the run as the orchestrator would: a setup phase
ending once targets are scraped, a teardown starting when the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from scalelab.export.run_export import ExportRefused, export_run
from scalelab.platform.local import prometheus as local_prometheus
from scalelab.platform.ports import free_port
from scalelab.platform.process import wait_until
from scalelab.run.record import Phase, RunRecord, new_run_id, rfc3339
from scalelab.spec.loader import dump_spec, load_resolved
from scalelab.spec.models import ExperimentSpec

pytestmark = pytest.mark.integration

SCRAPE = 0.5
DOWN_S = 6.0
"""How long Prometheus stays dead: far over the 2.25 s that make a hole at a 0.5 s scrape."""
REPO = Path(__file__).resolve().parents[2]


class PrometheusProcess:
    """The Debian Prometheus on a fixed port and data directory, started and killed by hand."""

    def __init__(self, port: int, data: Path, config: Path, log: Path):
        spec = local_prometheus.prometheus_process(port, config, data, 86_400, log)
        self.argv, self.log, self.url = spec.argv, log, f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: local_prometheus.is_ready(self.url), 60), self.log.read_text()

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None


@dataclass
class GapRun:
    dir: Path
    data: Path
    prometheus: PrometheusProcess
    port: int
    down: tuple[datetime, datetime]
    """From the SIGKILL to the restart: Prometheus scraped nothing then."""
    saved: dict[str, bytes]
    """metrics.parquet and run.json after the export at the run's end."""

    def restore(self) -> None:
        for name, content in self.saved.items():
            (self.dir / name).write_bytes(content)

    def stamps(self) -> list[datetime]:
        table = pq.read_table(self.dir / "metrics.parquet", columns=["timestamp"])
        return table.column("timestamp").to_pylist()

    def record(self) -> RunRecord:
        return RunRecord.read(self.dir)


def scrape_config(tmp: Path, run_id: str, app_port: int, prom_port: int) -> Path:
    targets = tmp / "targets.json"
    labels = {"role": "test", "run_id": run_id}
    local_prometheus.write_targets(
        targets, {"app": (app_port, labels), "prometheus": (prom_port, labels)}
    )
    config = tmp / "prometheus.yml"
    config.write_text(local_prometheus.prometheus_config(SCRAPE, targets))
    return config


def scraped(url: str) -> bool:
    return not local_prometheus.unscraped_targets(url, {"app", "prometheus"})


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scalelab.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "300"},
    )


def in_hole(stamps: list[datetime], down: tuple[datetime, datetime]) -> list[datetime]:
    return [t for t in stamps if down[0] < t < down[1]]


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GapRun]:
    """A run whose Prometheus was SIGKILLed mid-load, exported at its end as a run is."""
    tmp = tmp_path_factory.mktemp("export-gap")
    spec = ExperimentSpec.model_validate(
        {
            "name": "gaptest",
            "load": {"profile": "constant", "rate": 1},
            "monitoring": {"scrape_interval": f"{SCRAPE}s", "node_exporter": False},
        }
    )
    run_id = new_run_id(spec.name, dump_spec(spec))
    run_dir = tmp / run_id
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text(dump_spec(spec))
    registry = CollectorRegistry()
    frames = Counter("scalelab_test_frames", "Frames.", registry=registry)
    depth = Gauge("scalelab_test_depth", "Depth.", registry=registry)
    app_port, port = free_port(), free_port()
    server, thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    prom = PrometheusProcess(
        port, tmp / "data", scrape_config(tmp, run_id, app_port, port), tmp / "prom.log"
    )
    record = RunRecord(id=run_id, name=spec.name, platform="local")
    record.endpoints = {"bootstrap": "127.0.0.1:9", "prometheus": prom.url}
    try:
        started = datetime.now(UTC)
        prom.start()
        assert wait_until(lambda: scraped(prom.url), 60), "targets never scraped"
        record.phases.append(Phase("setup", rfc3339(started), rfc3339(datetime.now(UTC))))
        for _ in range(8):
            frames.inc()
            depth.set(3)
            time.sleep(SCRAPE)
        killed = datetime.now(UTC)
        prom.signal(signal.SIGKILL)
        time.sleep(DOWN_S)
        restarted = datetime.now(UTC)
        prom.start()
        # Scraping resumes when Prometheus has read its targets again (up to ~5 s).
        assert wait_until(lambda: scraped(prom.url), 60)
        time.sleep(4 * SCRAPE)
        ended = datetime.now(UTC)
        record.phases.append(Phase("load", record.phases[0].end or "", rfc3339(ended)))
        record.phases.append(Phase("teardown", rfc3339(ended), rfc3339(ended)))
        record.finish("succeeded")
        record.ended = rfc3339(ended)
        time.sleep(3)  # the window's 2 s margin after the run's end is in the past: fixed
        export_run(run_dir, spec, record, prom.url)
        record.write(run_dir)
        prom.signal(signal.SIGTERM)
        saved = {name: (run_dir / name).read_bytes() for name in ("metrics.parquet", "run.json")}
        yield GapRun(run_dir, tmp / "data", prom, port, (killed, restarted), saved)
    finally:
        prom.signal(signal.SIGTERM)
        server.shutdown()
        thread.join(5)


@pytest.fixture
def run(gap_run: GapRun) -> GapRun:
    gap_run.restore()
    return gap_run


def assert_hole_kept(run: GapRun) -> None:
    """No sample while Prometheus was dead; the record says so and lists the hole."""
    stamps = run.stamps()
    assert stamps, "the export holds the run's samples"
    assert in_hole(stamps, run.down) == []
    assert min(stamps) < run.down[0] and max(stamps) > run.down[1]  # data on both sides
    record = run.record()
    export = record.results["export"]
    assert export["complete"] is False
    (gap,) = export["gaps"]
    start, end = (datetime.fromisoformat(gap[k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert start <= run.down[0] and end >= run.down[1]
    warnings = [w for w in record.warnings if w.startswith("export incomplete")]
    assert len(warnings) == 1 and "no samples" in warnings[0]


def test_the_export_at_the_end_of_the_run_leaves_the_hole_empty(run: GapRun) -> None:
    assert_hole_kept(run)


def test_reexport_from_the_runs_prometheus_keeps_the_hole(run: GapRun) -> None:
    run.prometheus.start()
    try:
        result = cli("export", str(run.dir))
    finally:
        run.prometheus.signal(signal.SIGTERM)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "incomplete" in result.stdout and "scraped nothing" in result.stdout
    assert_hole_kept(run)


def test_reexport_from_kept_data_keeps_the_hole(run: GapRun) -> None:
    rows = len(run.stamps())
    result = cli("export", str(run.dir))  # the run's Prometheus is stopped: its data is used
    assert result.returncode == 1, result.stdout + result.stderr
    assert "incomplete" in result.stdout
    assert_hole_kept(run)
    assert len(run.stamps()) == rows


@pytest.fixture
def stranger(run: GapRun, tmp_path: Path) -> Iterator[PrometheusProcess]:
    """Another Prometheus, with data of its own, on the port the run recorded."""
    config = tmp_path / "prometheus.yml"
    config.write_text('{"global": {"scrape_interval": "1s"}, "scrape_configs": []}')
    other = PrometheusProcess(run.port, tmp_path / "data", config, tmp_path / "prom.log")
    other.start()
    yield other
    other.signal(signal.SIGTERM)


def test_another_prometheus_on_the_recorded_port_is_refused(
    run: GapRun, stranger: PrometheusProcess, tmp_path: Path
) -> None:
    away = run.data.with_name("data-away")
    run.data.rename(away)  # the run's kept data is gone too: nothing holds the run's data
    try:
        result = cli("export", str(run.dir))
    finally:
        away.rename(run.data)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "refusing to export from another Prometheus" in message
    assert str(tmp_path / "data") in message and str(run.data) in message
    assert [(run.dir / n).read_bytes() for n in run.saved] == list(run.saved.values())


def test_another_prometheus_on_the_recorded_port_is_passed_over_for_the_kept_data(
    run: GapRun, stranger: PrometheusProcess
) -> None:
    rows = len(run.stamps())
    result = cli("export", str(run.dir))
    assert result.returncode == 1, result.stdout + result.stderr  # incomplete: the hole
    assert len(run.stamps()) == rows
    assert_hole_kept(run)
    assert run.record().results["export"]["prometheus"]["storage_path"] == str(run.data)


def test_a_smaller_export_never_replaces_the_table_unless_forced(
    run: GapRun, stranger: PrometheusProcess
) -> None:
    spec = load_resolved(run.dir / "spec.yaml")
    record = run.record()
    with pytest.raises(ExportRefused) as refused:
        export_run(run.dir, spec, record, stranger.url)
    assert refused.value.kept_rows == len(run.stamps()) > refused.value.found_rows == 0
    assert (run.dir / "metrics.parquet").read_bytes() == run.saved["metrics.parquet"]
    assert not (run.dir / "metrics.parquet.new").exists()
    assert record.results == run.record().results  # the record was not touched

    result = export_run(run.dir, spec, record, stranger.url, force=True)
    assert result.points == 0 and not result.complete  # the run's whole span is a hole there
    assert pq.read_table(run.dir / "metrics.parquet").num_rows == 0


def test_the_recorded_prometheus_identity(run: GapRun) -> None:
    """The export notes where its Prometheus kept its data, for later re-exports."""
    source = run.record().results["export"]["prometheus"]
    assert source == {"url": run.prometheus.url, "storage_path": str(run.data)}
