"""Export a run's window from Prometheus into `runs/<id>/metrics.parquet`.

At the end of a run this happens before Prometheus stops. `scalelab export
RUN_ID` does it again later (see :mod:`scalelab.export.source` for which
Prometheus it asks). Either way the raw samples are written, a hole in
Prometheus's data stays a hole and keeps the export incomplete, and an
existing table is never replaced by one with fewer rows unless the caller
forces it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scalelab.errors import ScalelabError
from scalelab.export.identity import storage_path
from scalelab.export.prometheus import ExportResult, MetricQuery, Window, export_window
from scalelab.run.record import RunRecord, parse_rfc3339, utc_now
from scalelab.spec.models import ExperimentSpec

METRICS_FILE = "metrics.parquet"
MARGIN = timedelta(seconds=2)
INCOMPLETE = "export incomplete"
"""How the run record's warning about an incomplete export starts."""


class ExportRefused(ScalelabError):
    """An export that found fewer rows than the table it would replace; the table is kept."""

    def __init__(self, path: Path, kept_rows: int, found_rows: int, url: str):
        self.path = path
        self.kept_rows = kept_rows
        self.found_rows = found_rows
        self.url = url
        super().__init__(
            f"kept {path} ({kept_rows:,} rows): the export from the Prometheus at {url} found "
            f"only {found_rows:,}; pass --force to replace it anyway"
        )


def run_window(record: RunRecord) -> Window:
    """From the first phase's start to the run's end (or now), with a small margin."""
    start = parse_rfc3339(record.phases[0].start if record.phases else record.started)
    end = parse_rfc3339(record.ended) if record.ended else utc_now()
    return Window(start - MARGIN, min(end + MARGIN, utc_now()))


def scraping_window(record: RunRecord) -> Window | None:
    """When the run's Prometheus was meant to be scraping: from the end of the setup (every
    target scraped once) to the start of the teardown (or the run's end, or now).

    None without a finished setup phase: then only holes between scrapes are found.
    """
    phases = {phase.name: phase for phase in record.phases}
    setup, teardown = phases.get("setup"), phases.get("teardown")
    if setup is None or setup.end is None:
        return None
    end = teardown.start if teardown else record.ended
    start, stop = parse_rfc3339(setup.end), min(parse_rfc3339(end) if end else utc_now(), utc_now())
    return Window(start, stop) if start <= stop else None


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
    scrape_interval: float | None = None,
    expect: Window | None = None,
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
            scrape_interval=scrape_interval,
            expect=expect,
        )


def run_matchers(spec: ExperimentSpec, record: RunRecord) -> dict[str, str] | None:
    """Locally every target of a run carries its `run_id`; export only those series, not
    the flat leftovers of earlier runs that the kept Prometheus data still holds. A run
    that used the stack `scalelab up` started also takes that stack's series (a regex)."""
    if spec.platform.kind != "local":
        return None
    stack = (record.results.get("stack") or {}).get("run_id")
    ids = [record.id, *([stack] if stack else [])]
    return {"run_id": "|".join(re.escape(run_id) for run_id in ids)}


def export_run(
    run_dir: Path,
    spec: ExperimentSpec,
    record: RunRecord,
    url: str,
    console: Console | None = None,
    *,
    force: bool = False,
) -> ExportResult:
    """Export the run's window into its directory and note the result in the record.

    The new table replaces an existing one only when it has at least as many rows, or
    with ``force``; otherwise :class:`ExportRefused` is raised and neither the table nor
    the record changes.
    """
    final = run_dir / METRICS_FILE
    fresh = run_dir / f"{METRICS_FILE}.new"
    result = export_with_progress(
        url,
        run_window(record),
        fresh,
        spec.monitoring.scrape_interval,
        console,
        spec_queries(spec),
        matchers=run_matchers(spec, record),
        scrape_interval=spec.monitoring.scrape_interval,
        expect=scraping_window(record),
    )
    replace_unless_smaller(fresh, final, result.points, url, force)
    result = dataclasses.replace(result, path=final)
    record.results["export"] = {
        **result.to_dict(),
        "prometheus": {"url": url, "storage_path": storage_path(url)},
    }
    record.warnings = [w for w in record.warnings if not w.startswith(INCOMPLETE)]
    if not result.complete:
        record.warnings.append(incomplete_warning(result, record.id))
    return result


def replace_unless_smaller(fresh: Path, final: Path, rows: int, url: str, force: bool) -> None:
    """Move ``fresh`` (``rows`` rows) over ``final`` unless that would lose rows."""
    kept = parquet_rows(final)
    if rows < kept and not force:
        fresh.unlink(missing_ok=True)
        raise ExportRefused(final, kept, rows, url)
    os.replace(fresh, final)


def parquet_rows(path: Path) -> int:
    """Rows of the Parquet file at ``path``; 0 when there is none or it is unreadable."""
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException):
        return 0


def incomplete_warning(result: ExportResult, run_id: str) -> str:
    """What is missing: holes in Prometheus's data, and requests that failed for good."""
    parts = [f"no samples {gap.text()} (a hole in Prometheus's data)" for gap in result.gaps]
    if result.failed:
        failed = ", ".join(f"{f.metric} {f.start:%H:%M:%S}-{f.end:%H:%M:%S}" for f in result.failed)
        parts.append(f"{failed} (finish it with `scalelab export {run_id}`)")
    return f"{INCOMPLETE}: missing " + "; ".join(parts)


def parse_window(start: str, end: str | None) -> Window:
    return Window.parse(start, end or datetime.now(UTC).isoformat())
