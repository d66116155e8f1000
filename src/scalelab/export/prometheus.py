"""Export a time window from Prometheus into a long-format Parquet file.

Without queries, every metric name with data in the window is listed and
fetched whole with ``{__name__="<name>"}``: one range request per (name ×
segment), so a window of N names cut into S segments costs N×S requests.
With queries (the spec's named metric profiles), those PromQL expressions are
fetched instead, each row carrying its query's name as ``metric``.

Requests run on a small thread pool sharing one ``httpx.Client``; decoding
(its bulk in Arrow, which releases the GIL) happens on those threads, the Parquet
writing on the caller's. A request that still fails after its retries is
listed in :attr:`ExportResult.failed`; nothing is dropped silently.
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

from scalelab import __version__
from scalelab.errors import ConfigError
from scalelab.export.fetch import Fetcher, FetchError, RetryPolicy
from scalelab.export.parquet import ParquetSink
from scalelab.export.promjson import ResponseError, SeriesBlock, parse_matrix
from scalelab.export.segments import (
    Window,
    epoch_text,
    format_time,
    parse_time,
    plan_segments,
    step_microseconds,
)
from scalelab.export.types import ExportResult, FailedSegment, MetricQuery, ProgressCallback

__all__ = [
    "ExportResult",
    "FailedSegment",
    "MetricQuery",
    "ProgressCallback",
    "Window",
    "export_window",
    "parse_time",
    "plan_segments",
]

_DISCOVERY = "/api/v1/label/__name__/values"


@dataclass(frozen=True)
class _Job:
    """One range request: a query over one segment."""

    metric: str
    query: str
    segment: Window
    step: float

    def params(self) -> dict[str, str]:
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
) -> ExportResult:
    """Write every sample of ``window`` (sampled every ``step`` seconds) to ``out_path``.

    ``segment_points`` keeps each request under Prometheus's 11,000-point cap
    with a margin. ``compress`` asks for gzip answers: worth it over a slow
    link, a loss on loopback where it triples the cost of each answer.
    ``transport`` replaces the network (tests pass an ``httpx.MockTransport``).
    ``matchers`` (label → value) restrict discovery to the series carrying them, e.g. a run's
    ``run_id``, so series an earlier run left in the same Prometheus stay out.
    """
    _check_options(prometheus_url, step, concurrency, retries, backoff, timeout)
    started = time.perf_counter()
    failed: list[FailedSegment] = []
    path = Path(out_path)
    with _client(prometheus_url, timeout, concurrency, compress, transport) as client:
        fetcher = Fetcher(client, RetryPolicy(retries, backoff))
        if queries is None:
            queries = _discover(fetcher, window, failed, matchers or {})
        jobs = _jobs(queries, window, step, segment_points)
        with ParquetSink(path) as sink:
            _run(fetcher, jobs, sink, failed, concurrency, progress)
    return ExportResult(
        path=path,
        window=window,
        series=sink.series,
        points=sink.points,
        requests=len(jobs),
        seconds=time.perf_counter() - started,
        message=_message(window, sink.series, sink.points, failed, len(jobs)),
        failed=failed,
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


def _jobs(
    queries: Sequence[MetricQuery], window: Window, step: float, segment_points: int
) -> list[_Job]:
    plans: dict[float, list[Window]] = {}
    jobs: list[_Job] = []
    for query in queries:
        query_step = query.step or step
        if query_step not in plans:
            plans[query_step] = plan_segments(window, query_step, segment_points)
        jobs.extend(_Job(query.name, query.query, seg, query_step) for seg in plans[query_step])
    return jobs


def _run(
    fetcher: Fetcher,
    jobs: list[_Job],
    sink: ParquetSink,
    failed: list[FailedSegment],
    concurrency: int,
    progress: ProgressCallback | None,
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
                    pending.append((job, pool.submit(_fetch, fetcher, job)))
                _collect(*pending.popleft(), sink, failed)
                if progress:
                    progress(done, len(jobs))
        finally:
            for _, future in pending:
                future.cancel()


def _fetch(fetcher: Fetcher, job: _Job) -> SeriesBlock:
    return parse_matrix(fetcher.get("/api/v1/query_range", job.params()))


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
    window: Window, series: int, points: int, failed: list[FailedSegment], requests: int
) -> str:
    span = f"{format_time(window.start)} to {format_time(window.end)}"
    if any(failure.query == _DISCOVERY for failure in failed):
        return f"could not list the metric names in {span}: {failed[0].error}"
    text = f"{points} points of {series} series from {span}"
    if series == 0 and not failed:
        text = f"no series in {span}; wrote an empty table"
    if failed:
        text += f"; {len(failed)} of {requests} requests failed, so the export is incomplete"
    return text
