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
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np

from scalelab import __version__
from scalelab.errors import ConfigError
from scalelab.export.fetch import Fetcher, FetchError, RetryPolicy
from scalelab.export.gaps import Gap, find_gaps, gap_limit
from scalelab.export.gaps import scrape_interval as median_interval
from scalelab.export.jobs import Job, fetch_block, plan_jobs, run_jobs
from scalelab.export.parquet import ParquetSink
from scalelab.export.promjson import ResponseError
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
EDGE = timedelta(milliseconds=1)
"""One raw sample per scrape of every target: the record of when Prometheus scraped."""


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
    regex, matched whole) restrict discovery to the series carrying them, e.g. a run's
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
        unscraped: list[Gap] = []
        probes = 0
        if not failed:  # a Prometheus that cannot list its names will not give its scrapes
            holes = _holes(fetcher, window, span, failed, scrape_interval, expect)
            gaps, unscraped, probes = holes
        jobs = plan_jobs(queries, window, step, segment_points, raw)
        with ParquetSink(path) as sink:
            run_jobs(fetcher, jobs, sink, failed, concurrency, progress, unscraped)
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
    extra = "".join(f",{label}=~{json.dumps(value)}" for label, value in sorted(matchers.items()))
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
) -> tuple[list[Gap], list[Gap], int]:
    """Holes in Prometheus's data within the window, from the raw ``up`` samples.

    Returns the holes to report (within `expect`, where scrapes were due), the stretches
    of the whole window without a scrape (where a grid query would carry the last value
    on, edges included), and the requests made. When the scrape record cannot be read
    the failure is listed (the export is incomplete) and no hole is claimed.
    """
    segments = plan_spans(window, span)
    stamps: list[np.ndarray] = []
    spacings: list[float] = []
    for segment in segments:
        job = Job(_SCRAPES.name, _SCRAPES.query, segment, span, raw=True)
        try:
            block = fetch_block(fetcher, job, [])
        except (FetchError, ResponseError) as exc:
            failed.append(job.failure(f"scrape record unreadable: {exc}"))
            return [], [], len(segments)
        stamps.append(block.timestamps_ns)
        spacing = median_interval(block)
        if spacing is not None:
            spacings.append(spacing)
    interval = interval or (max(spacings) if spacings else None)
    if interval is None:
        return [], [], len(segments)  # no two scrapes of any target: nothing to measure against
    expected = _within(expect, window) if expect else None
    times = np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64)
    limit = gap_limit(interval)
    # a hole's edges are exclusive: widen the window so grid points on its own edges drop too
    edges = Window(window.start - EDGE, window.end + EDGE)
    return find_gaps(times, limit, expected), find_gaps(times, limit, edges), len(segments)


def _within(expect: Window, window: Window) -> Window | None:
    start, end = max(expect.start, window.start), min(expect.end, window.end)
    return Window(start, end) if start <= end else None


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
