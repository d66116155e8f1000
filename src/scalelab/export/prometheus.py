"""Export a time window from Prometheus into a long-format Parquet file.

Without queries, every metric name with data in the window is listed and its
raw samples are read: the range-vector selector ``{__name__="<name>"}[<span>]``
evaluated at each span's end returns the stored samples with their own
timestamps, one request per (name × span). Nothing is invented: where
Prometheus scraped nothing, the table has no row. With queries (the spec's
named metric profiles), those PromQL expressions are evaluated on the step grid
with range queries instead, each row carrying its query's name as ``metric``;
grid points inside a hole in Prometheus's data are dropped, because a grid
query fills such a hole with the last value it saw (lookback).

Holes are found from the raw samples of ``up`` (one per scrape of every target,
see :mod:`scalelab.export.gaps`) and make the export incomplete, as does a
request that still fails after its retries (listed in
:attr:`ExportResult.failed`); nothing is dropped or filled silently.

Requests run on a small thread pool sharing one ``httpx.Client``; decoding
(its bulk in Arrow, which releases the GIL) happens on those threads, the Parquet
writing on the caller's.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from scalelab import __version__
from scalelab.errors import ConfigError
from scalelab.export.fetch import Fetcher, FetchError, RetryPolicy
from scalelab.export.gaps import Gap, drop_inside, find_gaps, gap_limit, keep_between
from scalelab.export.gaps import scrape_interval as median_interval
from scalelab.export.parquet import ParquetSink
from scalelab.export.promjson import ResponseError, SeriesBlock, parse_matrix
from scalelab.export.segments import (
    Window,
    check_segment_points,
    epoch_text,
    format_time,
    parse_time,
    plan_segments,
    plan_spans,
    step_microseconds,
)
from scalelab.export.types import ExportResult, FailedSegment, MetricQuery, ProgressCallback

__all__ = [
    "ExportResult",
    "FailedSegment",
    "Gap",
    "MetricQuery",
    "ProgressCallback",
    "Window",
    "export_window",
    "parse_time",
    "plan_segments",
]

_DISCOVERY = "/api/v1/label/__name__/values"
_SCRAPES = MetricQuery("up", "up")
"""One raw sample per scrape of every target: the record of when Prometheus scraped."""


@dataclass(frozen=True)
class _Job:
    """One request: a query over one segment, raw samples or evaluated on the step grid."""

    metric: str
    query: str
    segment: Window
    step: float
    raw: bool

    @property
    def path(self) -> str:
        return "/api/v1/query" if self.raw else "/api/v1/query_range"

    def params(self) -> dict[str, str]:
        if self.raw:
            # [start, end] in whole ms; the selector reaches 1 ms further back and the
            # sample there (Prometheus 2 includes it, 3 does not) is cut by keep_between.
            span_ms = round(self.segment.seconds * 1000) + 1
            return {"query": f"{self.query}[{span_ms}ms]", "time": epoch_text(self.segment.end)}
        return {
            "query": self.query,
            "start": epoch_text(self.segment.start),
            "end": epoch_text(self.segment.end),
            "step": f"{step_microseconds(self.step) / 1e6:.3f}",
        }

    def failure(self, error: str) -> FailedSegment:
        return FailedSegment(self.metric, self.query, self.segment.start, self.segment.end, error)


def export_window(
    prometheus_url: str,
    window: Window,
    out_path: str | Path,
    *,
    queries: Sequence[MetricQuery] | None = None,
    step: float,
    concurrency: int = 4,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30,
    segment_points: int = 10_000,
    compress: bool = False,
    progress: ProgressCallback | None = None,
    transport: httpx.BaseTransport | None = None,
    matchers: dict[str, str] | None = None,
    scrape_interval: float | None = None,
    expect: Window | None = None,
) -> ExportResult:
    """Write every sample of ``window`` to ``out_path``.

    Raw samples are read in spans of ``segment_points × step`` seconds; named
    queries are evaluated every ``step`` seconds (or their own step) in
    segments of ``segment_points`` points, under Prometheus's 11,000-point cap.
    ``compress`` asks for gzip answers: worth it over a slow link, a loss on
    loopback where it triples the cost of each answer. ``transport`` replaces
    the network (tests pass an ``httpx.MockTransport``). ``matchers`` (label →
    value) restrict discovery to the series carrying them, e.g. a run's
    ``run_id``, so series an earlier run left in the same Prometheus stay out.

    ``scrape_interval`` is the spacing of scrapes that holes are measured
    against (default: read off the ``up`` samples). ``expect`` is the part of
    the window in which Prometheus was meant to be scraping (for a run, from
    the end of its setup to the start of its teardown): a hole may then touch
    its edges. Without it only holes between scrapes count.
    """
    _check_options(prometheus_url, step, concurrency, retries, backoff, timeout)
    check_segment_points(segment_points)
    step_microseconds(step)  # a step under 1 ms is refused
    started = time.perf_counter()
    failed: list[FailedSegment] = []
    path = Path(out_path)
    span = segment_points * step
    with _client(prometheus_url, timeout, concurrency, compress, transport) as client:
        fetcher = Fetcher(client, RetryPolicy(retries, backoff))
        raw = queries is None
        if queries is None:
            queries = _discover(fetcher, window, failed, matchers or {})
        gaps: list[Gap] = []
        probes = 0
        if not failed:  # a Prometheus that cannot list its names will not give its scrapes
            gaps, probes = _holes(fetcher, window, span, failed, scrape_interval, expect)
        jobs = _jobs(queries, window, step, segment_points, raw)
        with ParquetSink(path) as sink:
            _run(fetcher, jobs, sink, failed, concurrency, progress, gaps)
    return ExportResult(
        path=path,
        window=window,
        series=sink.series,
        points=sink.points,
        requests=len(jobs) + probes,
        seconds=time.perf_counter() - started,
        message=_message(window, sink.series, sink.points, failed, len(jobs) + probes, gaps),
        failed=failed,
        gaps=gaps,
    )


def _check_options(
    url: str, step: float, concurrency: int, retries: int, backoff: float, timeout: float
) -> None:
    if httpx.URL(url).scheme not in ("http", "https"):
        raise ConfigError(f"Prometheus URL {url!r} must start with http:// or https://")
    if step <= 0 or concurrency < 1 or retries < 0 or backoff < 0 or timeout <= 0:
        raise ConfigError(
            "export needs step > 0, concurrency >= 1, retries >= 0, backoff >= 0 and "
            f"timeout > 0 (got {step=}, {concurrency=}, {retries=}, {backoff=}, {timeout=})"
        )


def _client(
    url: str,
    timeout: float,
    concurrency: int,
    compress: bool,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    headers = {
        "Accept-Encoding": "gzip" if compress else "identity",
        "User-Agent": f"scalelab/{__version__}",
    }
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.Client(
        base_url=url, headers=headers, timeout=timeout, limits=limits, transport=transport
    )


def _discover(
    fetcher: Fetcher, window: Window, failed: list[FailedSegment], matchers: dict[str, str]
) -> list[MetricQuery]:
    """A query ``{__name__="<name>"}`` for every metric name with data in the window."""
    params = {"start": epoch_text(window.start), "end": epoch_text(window.end)}
    extra = "".join(f",{label}={json.dumps(value)}" for label, value in sorted(matchers.items()))
    if extra:
        params["match[]"] = "{" + extra[1:] + "}"
    try:
        names = _label_values(fetcher.get(_DISCOVERY, params))
    except (FetchError, ResponseError) as exc:
        failed.append(FailedSegment("*", _DISCOVERY, window.start, window.end, str(exc)))
        return []
    return [MetricQuery(name, f"{{__name__={json.dumps(name)}{extra}}}") for name in names]


def _label_values(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ResponseError(f"label values answer is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("status") != "success":
        raise ResponseError(f"label values answer is an error: {document!r}"[:300])
    return [str(name) for name in document.get("data") or []]


def _holes(
    fetcher: Fetcher,
    window: Window,
    span: float,
    failed: list[FailedSegment],
    interval: float | None,
    expect: Window | None,
) -> tuple[list[Gap], int]:
    """Holes in Prometheus's data within the window, from the raw ``up`` samples.

    Returns the holes and the requests made. When the scrape record cannot be read the
    failure is listed (the export is incomplete) and no hole is claimed.
    """
    segments = plan_spans(window, span)
    stamps: list[np.ndarray] = []
    spacings: list[float] = []
    for segment in segments:
        job = _Job(_SCRAPES.name, _SCRAPES.query, segment, span, raw=True)
        try:
            block = _fetch(fetcher, job, [])
        except (FetchError, ResponseError) as exc:
            failed.append(job.failure(f"scrape record unreadable: {exc}"))
            return [], len(segments)
        stamps.append(block.timestamps_ns)
        spacing = median_interval(block)
        if spacing is not None:
            spacings.append(spacing)
    interval = interval or (max(spacings) if spacings else None)
    if interval is None:
        return [], len(segments)  # no two scrapes of any target: nothing to measure against
    expected = _within(expect, window) if expect else None
    times = np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64)
    return find_gaps(times, gap_limit(interval), expected), len(segments)


def _within(expect: Window, window: Window) -> Window | None:
    start, end = max(expect.start, window.start), min(expect.end, window.end)
    return Window(start, end) if start <= end else None


def _jobs(
    queries: Sequence[MetricQuery], window: Window, step: float, segment_points: int, raw: bool
) -> list[_Job]:
    if raw:
        spans = plan_spans(window, segment_points * step)
        return [_Job(q.name, q.query, seg, step, raw=True) for q in queries for seg in spans]
    plans: dict[float, list[Window]] = {}
    jobs: list[_Job] = []
    for query in queries:
        query_step = query.step or step
        if query_step not in plans:
            plans[query_step] = plan_segments(window, query_step, segment_points)
        jobs.extend(
            _Job(query.name, query.query, seg, query_step, raw=False) for seg in plans[query_step]
        )
    return jobs


def _run(
    fetcher: Fetcher,
    jobs: list[_Job],
    sink: ParquetSink,
    failed: list[FailedSegment],
    concurrency: int,
    progress: ProgressCallback | None,
    gaps: list[Gap],
) -> None:
    """Fetch jobs with at most ``2 × concurrency`` answers held; write them in job order."""
    queue = iter(jobs)
    pending: deque[tuple[_Job, Future[SeriesBlock]]] = deque()
    if progress:
        progress(0, len(jobs))
    with ThreadPoolExecutor(concurrency, thread_name_prefix="scalelab-export") as pool:
        try:
            for done in range(1, len(jobs) + 1):
                while len(pending) < 2 * concurrency and (job := next(queue, None)):
                    pending.append((job, pool.submit(_fetch, fetcher, job, gaps)))
                _collect(*pending.popleft(), sink, failed)
                if progress:
                    progress(done, len(jobs))
        finally:
            for _, future in pending:
                future.cancel()


def _fetch(fetcher: Fetcher, job: _Job, gaps: list[Gap]) -> SeriesBlock:
    """A job's samples: raw ones cut to its span (no sample twice), grid ones outside holes."""
    block = parse_matrix(fetcher.get(job.path, job.params()))
    if job.raw:
        return keep_between(block, job.segment.start, job.segment.end)
    return drop_inside(block, gaps)


def _collect(
    job: _Job, future: Future[SeriesBlock], sink: ParquetSink, failed: list[FailedSegment]
) -> None:
    try:
        block = future.result()
    except (FetchError, ResponseError) as exc:
        failed.append(job.failure(str(exc)))
    else:
        sink.add(job.metric, block)


def _message(
    window: Window,
    series: int,
    points: int,
    failed: list[FailedSegment],
    requests: int,
    gaps: list[Gap],
) -> str:
    span = f"{format_time(window.start)} to {format_time(window.end)}"
    if any(failure.query == _DISCOVERY for failure in failed):
        return f"could not list the metric names in {span}: {failed[0].error}"
    text = f"{points} points of {series} series from {span}"
    if series == 0 and not failed:
        text = f"no series in {span}; wrote an empty table"
    if failed:
        text += f"; {len(failed)} of {requests} requests failed"
    if gaps:
        holes = ", ".join(f"{gap.text()} ({gap.seconds:.0f} s)" for gap in gaps)
        text += f"; Prometheus scraped nothing {holes} (left empty)"
    if failed or gaps:
        text += ", so the export is incomplete"
    return text
