"""Export throughput, Prometheus → Parquet: scalelab vs prometheus-api-client.

Backfills a throwaway Prometheus (10 metric names × 100 series × 3,600 points
at 1 s, an hour ending two hours ago by default), then exports the same window
with the same chunking twice (after one untimed read of all the data, so
neither pays for a cold TSDB), timing each end to end:

- scalelab's ``export_window`` (name discovery, the stored samples read with range-vector
  selectors, Parquet with zstd);
- prometheus-api-client: ``get_metric_range_data`` per metric name into a
  ``MetricRangeDataFrame``, written to Parquet with zstd as well.

Goal: scalelab ≥ 3× prometheus-api-client and ≥ 500,000 points/s.
Run: ``.venv/bin/python bench/export_throughput.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

from _promfill import Fill, filled_prometheus
from scalelab.export.prometheus import Window, export_window

GOAL_RATIO = 3.0
GOAL_POINTS_PER_SECOND = 500_000


@dataclass(frozen=True)
class Timing:
    name: str
    points: int
    seconds: float
    parquet_bytes: int

    @property
    def rate(self) -> float:
        return self.points / self.seconds


def warm_up(url: str, fill: Fill) -> None:
    """Read every chunk once, untimed, so neither contender pays for a cold TSDB."""
    seconds = fill.last - fill.first + 1
    query = f'count_over_time({{__name__=~"scalelab_bench_.+"}}[{seconds}s])'
    httpx.get(f"{url}/api/v1/query", params={"query": query, "time": fill.last}, timeout=60)


def run_scalelab(url: str, fill: Fill, out: Path, segment_points: int, concurrency: int) -> Timing:
    window = Window(_utc(fill.first), _utc(fill.last))
    started = time.perf_counter()
    result = export_window(
        url, window, out, step=1, segment_points=segment_points, concurrency=concurrency
    )
    seconds = time.perf_counter() - started
    if not result.complete:
        raise SystemExit(f"scalelab export incomplete: {result.to_dict()}")
    return Timing("scalelab export_window", result.points, seconds, out.stat().st_size)


def run_api_client(url: str, fill: Fill, out: Path, segment_points: int) -> Timing:
    """Same names, same window, same chunk length; one Parquet file, zstd."""
    prom = PrometheusConnect(url=url, disable_ssl=True)
    # Its range selector ``name[Ns]`` at ``end`` covers [end - N, end] in Prometheus 2.x,
    # so starting one second early yields exactly the samples first..last.
    start, end = _utc(fill.first - 1), _utc(fill.last)
    chunk = min(timedelta(seconds=segment_points), end - start)
    started = time.perf_counter()
    names = [name for name in prom.all_metrics() if name in fill.names]
    points, writer = 0, None
    for name in names:
        frame = MetricRangeDataFrame(
            prom.get_metric_range_data(name, start_time=start, end_time=end, chunk_size=chunk)
        )
        table = pa.Table.from_pandas(frame)
        writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
        writer.write_table(table)
        points += table.num_rows
    if writer:
        writer.close()
    seconds = time.perf_counter() - started
    return Timing("prometheus-api-client", points, seconds, out.stat().st_size)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def report(fill: Fill, timings: list[Timing]) -> bool:
    print(
        f"window {_utc(fill.first).isoformat()} .. {_utc(fill.last).isoformat()}: "
        f"{len(fill.names)} names × {fill.series_per_name} series × "
        f"{fill.last - fill.first + 1} points = {fill.points:,} points, step 1 s"
    )
    print(f"{'':24}{'points':>12}{'seconds':>10}{'points/s':>12}{'parquet MB':>12}")
    for t in timings:
        print(
            f"{t.name:24}{t.points:>12,}{t.seconds:>10.2f}{t.rate:>12,.0f}"
            f"{t.parquet_bytes / 1e6:>12.1f}"
        )
    ours, theirs = timings
    ratio = ours.rate / theirs.rate
    met = ratio >= GOAL_RATIO and ours.rate >= GOAL_POINTS_PER_SECOND
    print(
        f"ratio scalelab / prometheus-api-client: {ratio:.1f}× (goal ≥ {GOAL_RATIO:.0f}×); "
        f"scalelab {ours.rate:,.0f} points/s (goal ≥ {GOAL_POINTS_PER_SECOND:,}): "
        f"{'met' if met else 'NOT met'}"
    )
    counts_match = all(t.points == fill.points for t in timings)
    print(f"both read every backfilled point: {'yes' if counts_match else 'NO'}")
    return met and counts_match


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10)
    parser.add_argument("--series", type=int, default=100, help="series per metric name")
    parser.add_argument("--points", type=int, default=3600, help="points per series (1 s apart)")
    parser.add_argument("--segment-points", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with (
        filled_prometheus(args.names, args.series, args.points) as (url, fill),
        tempfile.TemporaryDirectory(prefix="scalelab-bench-out-") as tmp,
    ):
        ours_path, theirs_path = Path(tmp) / "scalelab.parquet", Path(tmp) / "api_client.parquet"
        warm_up(url, fill)
        ours = run_scalelab(url, fill, ours_path, args.segment_points, args.concurrency)
        theirs = run_api_client(url, fill, theirs_path, args.segment_points)
        return 0 if report(fill, [ours, theirs]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
