"""Which Prometheus a run is exported from again, after the run.

The run's own Prometheus if it still answers at its recorded address, else the
running stack's (both keep their data in the same directory), else one started
just for the export on the data the local platform keeps between runs. An
address is not an identity: a Prometheus that answers there but is not the
run's (its data elsewhere, no series of the run) is passed over, and when no
other holds the run's data the export is refused, naming what was found.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scalelab import paths
from scalelab.errors import ComponentError, ScalelabError
from scalelab.export.identity import mismatch
from scalelab.export.run_export import run_window
from scalelab.platform.local import prometheus as local_prometheus
from scalelab.platform.ports import free_port
from scalelab.platform.process import ManagedProcess, wait_until
from scalelab.run.record import RunRecord
from scalelab.run.stack import read_stack
from scalelab.spec.models import ExperimentSpec


class WrongPrometheus(ScalelabError):
    """No Prometheus that holds the run's data: the ones that answer are someone else's."""

    exit_code = 2

    def __init__(self, run_id: str, found: list[str], kept: Path):
        self.run_id = run_id
        self.found = found
        self.kept = kept
        if found:
            text = f"refusing to export from another Prometheus: {'; '.join(found)}"
        else:
            text = "its Prometheus is gone"
        super().__init__(f"run {run_id}: {text}; and no kept data of the run is in {kept}")


@contextlib.contextmanager
def prometheus_for(record: RunRecord, spec: ExperimentSpec) -> Iterator[str]:
    """The URL of a Prometheus that holds the run's data, for as long as the export takes."""
    expected = recorded_data_dir(record)
    window = run_window(record)
    running = read_stack() or {}
    found: list[str] = []
    for url in (record.endpoints.get("prometheus"), running.get("endpoints", {}).get("prometheus")):
        if not url or not local_prometheus.is_ready(url):
            continue
        reason = mismatch(url, record.id, window, expected)
        if reason is None:
            yield url
            return
        found.append(reason)
    data = kept_data_dir(expected)
    if not data.is_dir():
        raise WrongPrometheus(record.id, found, data)
    with kept_data_prometheus(data, spec.monitoring.retention) as started:
        reason = mismatch(started, record.id, window, None)
        if reason is not None:
            raise WrongPrometheus(record.id, [*found, reason], data)
        yield started


def recorded_data_dir(record: RunRecord) -> Path | None:
    """Where the run's Prometheus kept its data, as its first export recorded it."""
    source = (record.results.get("export") or {}).get("prometheus") or {}
    recorded = source.get("storage_path")
    if recorded and Path(recorded).is_absolute():
        return Path(recorded)
    return paths.state_dir() / "prometheus" / "data" if record.platform == "local" else None


def kept_data_dir(recorded: Path | None) -> Path:
    """The data to start a Prometheus on: the recorded directory if it is still here."""
    if recorded is not None and recorded.is_dir():
        return recorded
    return paths.state_dir() / "prometheus" / "data"


@contextlib.contextmanager
def kept_data_prometheus(data: Path, retention_s: float) -> Iterator[str]:
    """A Prometheus with no scrape targets on kept data, for as long as the export takes."""
    work = Path(tempfile.mkdtemp(prefix="scalelab-export-"))
    config = work / "prometheus.yml"
    config.write_text('{"global": {"scrape_interval": "1m"}, "scrape_configs": []}')
    port = free_port()
    spec = local_prometheus.prometheus_process(
        port, config, data, retention_s, work / "prometheus.log"
    )
    proc = ManagedProcess(spec, work / "pids", "export", detached=False)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: local_prometheus.is_ready(url) or not proc.alive(), 60):
            raise ComponentError("prometheus", "not ready on the kept data", proc.log_tail())
        if not proc.alive():
            raise ComponentError(
                "prometheus", "exited (is another Prometheus using the data?)", proc.log_tail()
            )
        yield url
    finally:
        proc.stop()
        shutil.rmtree(work, ignore_errors=True)
