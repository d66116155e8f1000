"""The requests of an export: planned per query and segment, run on a small thread pool.

Raw jobs read a metric's stored samples with a range-vector selector at the end
of a span; grid jobs evaluate a PromQL expression with ``query_range``. At most
``2 × concurrency`` answers are held at once, and they are written in job order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from scalelab.export.fetch import Fetcher, FetchError
from scalelab.export.gaps import Gap, drop_inside, keep_between
from scalelab.export.parquet import ParquetSink
from scalelab.export.promjson import ResponseError, SeriesBlock, parse_matrix
from scalelab.export.segments import (
    Window,
    epoch_text,
    plan_segments,
    plan_spans,
    step_microseconds,
)
from scalelab.export.types import FailedSegment, MetricQuery, ProgressCallback


@dataclass(frozen=True)
class Job:
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


def plan_jobs(
    queries: Sequence[MetricQuery], window: Window, step: float, segment_points: int, raw: bool
) -> list[Job]:
    """Raw: every query over spans of ``segment_points × step`` s. Grid: every query over
    segments of ``segment_points`` points at its own step (or ``step``)."""
    if raw:
        spans = plan_spans(window, segment_points * step)
        return [Job(q.name, q.query, seg, step, raw=True) for q in queries for seg in spans]
    plans: dict[float, list[Window]] = {}
    jobs: list[Job] = []
    for query in queries:
        query_step = query.step or step
        if query_step not in plans:
            plans[query_step] = plan_segments(window, query_step, segment_points)
        jobs.extend(
            Job(query.name, query.query, seg, query_step, raw=False) for seg in plans[query_step]
        )
    return jobs


def run_jobs(
    fetcher: Fetcher,
    jobs: list[Job],
    sink: ParquetSink,
    failed: list[FailedSegment],
    concurrency: int,
    progress: ProgressCallback | None,
    gaps: list[Gap],
) -> None:
    """Fetch jobs with at most ``2 × concurrency`` answers held; write them in job order."""
    queue = iter(jobs)
    pending: deque[tuple[Job, Future[SeriesBlock]]] = deque()
    if progress:
        progress(0, len(jobs))
    with ThreadPoolExecutor(concurrency, thread_name_prefix="scalelab-export") as pool:
        try:
            for done in range(1, len(jobs) + 1):
                while len(pending) < 2 * concurrency and (job := next(queue, None)):
                    pending.append((job, pool.submit(fetch_block, fetcher, job, gaps)))
                _collect(*pending.popleft(), sink, failed)
                if progress:
                    progress(done, len(jobs))
        finally:
            for _, future in pending:
                future.cancel()


def fetch_block(fetcher: Fetcher, job: Job, gaps: list[Gap]) -> SeriesBlock:
    """A job's samples: raw ones cut to its span (no sample twice), grid ones outside holes."""
    block = parse_matrix(fetcher.get(job.path, job.params()))
    if job.raw:
        return keep_between(block, job.segment.start, job.segment.end)
    return drop_inside(block, gaps)


def _collect(
    job: Job, future: Future[SeriesBlock], sink: ParquetSink, failed: list[FailedSegment]
) -> None:
    try:
        block = future.result()
    except (FetchError, ResponseError) as exc:
        failed.append(job.failure(str(exc)))
    else:
        sink.add(job.metric, block)
