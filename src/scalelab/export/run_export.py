"""Export a run's window from Prometheus into `runs/<id>/metrics.parquet`.

At the end of a run this happens before Prometheus stops. `scalelab export
RUN_ID` does it again later: against the run's Prometheus if it still
answers, otherwise against a Prometheus started just for the export on the
data the local platform keeps between runs.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scalelab import paths
from scalelab.errors import ComponentError, ConfigError
from scalelab.export.prometheus import ExportResult, MetricQuery, Window, export_window
from scalelab.platform.local import prometheus as local_prometheus
from scalelab.platform.ports import free_port
from scalelab.platform.process import ManagedProcess, wait_until
from scalelab.run.record import RunRecord, parse_rfc3339, utc_now
from scalelab.run.stack import read_stack
from scalelab.spec.models import ExperimentSpec

METRICS_FILE = "metrics.parquet"
MARGIN = timedelta(seconds=2)


def run_window(record: RunRecord) -> Window:
    """From the first phase's start to the run's end (or now), with a small margin."""
    start = parse_rfc3339(record.phases[0].start if record.phases else record.started)
    end = parse_rfc3339(record.ended) if record.ended else utc_now()
    return Window(start - MARGIN, min(end + MARGIN, utc_now()))


def spec_queries(spec: ExperimentSpec) -> list[MetricQuery] | None:
    if spec.monitoring.metrics is None:
        return None
    return [MetricQuery(m.name, m.query, m.step) for m in spec.monitoring.metrics]


def export_with_progress(
    url: str,
    window: Window,
    out: Path,
    step: float,
    console: Console | None,
    queries: list[MetricQuery] | None = None,
    concurrency: int = 4,
    segment_points: int = 10_000,
    matchers: dict[str, str] | None = None,
) -> ExportResult:
    """`export_window` with a rich progress bar of series × segments done."""
    columns = (TextColumn("export"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=console is None) as bar:
        task = bar.add_task("export", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return export_window(
            url,
            window,
            out,
            queries=queries,
            step=step,
            progress=progress,
            concurrency=concurrency,
            segment_points=segment_points,
            matchers=matchers,
        )


def run_matchers(spec: ExperimentSpec, record: RunRecord) -> dict[str, str] | None:
    """Locally every target of a run carries its `run_id`; export only those series, not
    the flat leftovers of earlier runs that the kept Prometheus data still holds."""
    return {"run_id": record.id} if spec.platform.kind == "local" else None


def export_run(
    run_dir: Path, spec: ExperimentSpec, record: RunRecord, url: str, console: Console | None = None
) -> ExportResult:
    """Export the run's window into its directory and note the result in the record."""
    result = export_with_progress(
        url,
        run_window(record),
        run_dir / METRICS_FILE,
        spec.monitoring.scrape_interval,
        console,
        spec_queries(spec),
        matchers=run_matchers(spec, record),
    )
    record.results["export"] = result.to_dict()
    if not result.complete:
        missing = ", ".join(
            f"{f.metric} {f.start:%H:%M:%S}-{f.end:%H:%M:%S}" for f in result.failed
        )
        record.warnings.append(
            f"export incomplete: missing {missing}; finish it with `scalelab export {record.id}`"
        )
    return result


@contextlib.contextmanager
def prometheus_for(record: RunRecord, spec: ExperimentSpec) -> Iterator[str]:
    """The run's Prometheus or the running stack's (both keep the same data directory) if one
    answers, else a Prometheus started on the locally kept data."""
    running = read_stack() or {}
    for url in (record.endpoints.get("prometheus"), running.get("endpoints", {}).get("prometheus")):
        if url and local_prometheus.is_ready(url):
            yield url
            return
    data = paths.state_dir() / "prometheus" / "data"
    if not data.is_dir():
        raise ConfigError(f"run {record.id}: its Prometheus is gone and no kept data is in {data}")
    with kept_data_prometheus(data, spec.monitoring.retention) as started:
        yield started


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


def parse_window(start: str, end: str | None) -> Window:
    return Window.parse(start, end or datetime.now(UTC).isoformat())
