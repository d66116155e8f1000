"""Export throughput, Prometheus → Parquet: scalelab vs prometheus-api-client.

Backfills a throwaway Prometheus (10 metric names × 100 series × 3,600 points
at 1 s, an hour ending two hours ago by default), then exports the same window
with the same chunking twice (after one untimed read of all the data, so
neither pays for a cold TSDB), timing each end to end:

- scalelab's ``export_window`` (name discovery, the stored samples read with range-vector
  selectors, Parquet with zstd);
- prometheus-api-client: ``get_metric_range_data`` per metric name into a
  ``MetricRangeDataFrame``, written to Parquet with zstd as well;
- the seed project's own extractor (``seed_extractor.py``: a thread per
  name, at most 4 at once, fixed segments with inclusive boundaries, indented
  JSON per segment), given the window as the naive UTC strings it takes,
  under TZ=UTC (its correct use).

Same window, same names, same segment length (``--segment-points`` seconds
at step 1 s) for all; ``--rounds`` (3) rounds, the order rotating; median
[min..max] and the ratios within each round; the 1-minute load average with
every run. Points are counted as each wrote them, and (seed) how many repeat
a (series, timestamp) already written. Then the seed once more with the same
strings under TZ=America/New_York: what a user outside UTC gets from it
(scalelab refuses a time without a zone).

Goal: scalelab ≥ 3× prometheus-api-client and ≥ 500,000 points/s.
Run: ``.venv/bin/python bench/export_throughput.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

import seed_extractor
from _common import median, spread, table
from _promfill import Fill, filled_prometheus
from scalelab.export.prometheus import Window, export_window

GOAL_RATIO = 3.0
GOAL_POINTS_PER_SECOND = 500_000


@dataclass
class Timing:
    name: str
    points: int
    seconds: float
    parquet_bytes: int
    duplicates: int = 0
    load1: float = 0.0

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
    points, duplicates, writer = 0, 0, None
    for name in names:
        frame = MetricRangeDataFrame(
            prom.get_metric_range_data(name, start_time=start, end_time=end, chunk_size=chunk)
        )
        table = pa.Table.from_pandas(frame)
        writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
        writer.write_table(table)
        points += table.num_rows
        duplicates += int(frame.reset_index().duplicated().sum())
    if writer:
        writer.close()
    seconds = time.perf_counter() - started
    return Timing("prometheus-api-client", points, seconds, out.stat().st_size, duplicates)


def run_seed(
    url: str, fill: Fill, out: Path, segment_points: int, tz: str = "UTC", threads: int = 4
) -> Timing:
    """The seed's extractor over the window given as naive UTC strings, under time zone ``tz``."""
    start_text = _utc(fill.first).strftime(seed_extractor.DATE_FORMAT)
    end_text = _utc(fill.last).strftime(seed_extractor.DATE_FORMAT)
    saved = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        out.mkdir(parents=True)
        started = time.perf_counter()
        seed_extractor.create_snapshot(
            url, out, start_text, end_text, 1, segment_points, threads, set(fill.names)
        )
        seconds = time.perf_counter() - started
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
    points, duplicates, size = seed_extractor.count_points(out)
    return Timing(f"seed extractor TZ={tz}", points, seconds, size, duplicates)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


OURS, API, SEED = "scalelab export_window", "prometheus-api-client", "seed extractor TZ=UTC"


def report(fill: Fill, timings: list[tuple[int, Timing]], args: argparse.Namespace) -> bool:
    print(
        f"window {_utc(fill.first).isoformat()} .. {_utc(fill.last).isoformat()}: "
        f"{len(fill.names)} names × {fill.series_per_name} series × "
        f"{fill.last - fill.first + 1} points = {fill.points:,} points, step 1 s; segments of "
        f"{args.segment_points} s for all; scalelab concurrency {args.concurrency}, seed 4 "
        "threads, api-client sequential"
    )
    headers = ["round", "contender", "points", "duplicates", "seconds", "points/s", "output MB"]
    rows = [
        [r, t.name, t.points, t.duplicates, t.seconds, t.rate, t.parquet_bytes / 1e6, t.load1]
        for r, t in timings
    ]
    print(table([*headers, "load1"], rows))
    print()
    by = {name: [t for _, t in timings if t.name == name] for name in (OURS, API, SEED)}
    rounds = sorted({r for r, _ in timings})

    def ratios(other: str) -> list[float]:
        ours = {r: t.rate for r, t in timings if t.name == OURS}
        theirs = {r: t.rate for r, t in timings if t.name == other}
        return [ours[r] / theirs[r] for r in rounds]

    summary = [
        [name, spread([t.seconds for t in ts], "{:.2f}"), spread([t.rate for t in ts], "{:,.0f}")]
        + [spread([float(t.duplicates) for t in ts], "{:.0f}")]
        for name, ts in by.items()
    ]
    print("Median [min..max] over the rounds")
    print(table(["contender", "seconds", "points/s", "duplicates"], summary))
    api, seed = ratios(API), ratios(SEED)
    ours_rate = median([t.rate for t in by[OURS]])
    met = median(api) >= GOAL_RATIO and ours_rate >= GOAL_POINTS_PER_SECOND
    print(
        f"ratio scalelab / prometheus-api-client (points/s, within rounds): "
        f"{spread(api, '{:.1f}')}× (goal ≥ {GOAL_RATIO:.0f}×); scalelab / seed extractor: "
        f"{spread(seed, '{:.2f}')}×; scalelab {ours_rate:,.0f} points/s "
        f"(goal ≥ {GOAL_POINTS_PER_SECOND:,}): {'met' if met else 'NOT met'}"
    )
    exact = all(t.points == fill.points for t in by[OURS])
    every = {
        name: all(t.points - t.duplicates == fill.points for t in ts) for name, ts in by.items()
    }
    print(
        f"scalelab read every backfilled point exactly once: {'yes' if exact else 'NO'}; "
        + "; ".join(
            f"{name}: every point {'yes' if every[name] else 'NO'}, "
            f"{by[name][0].duplicates:,} duplicates (inner segment boundaries twice)"
            for name in (API, SEED)
        )
    )
    return met and exact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10)
    parser.add_argument("--series", type=int, default=100, help="series per metric name")
    parser.add_argument("--points", type=int, default=3600, help="points per series (1 s apart)")
    parser.add_argument("--segment-points", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    contenders = [OURS, API, SEED]
    timings: list[tuple[int, Timing]] = []
    with (
        filled_prometheus(args.names, args.series, args.points) as (url, fill),
        tempfile.TemporaryDirectory(prefix="scalelab-bench-out-") as tmp,
    ):
        warm_up(url, fill)
        for rnd in range(1, args.rounds + 1):
            shift = (rnd - 1) % len(contenders)
            for who in contenders[shift:] + contenders[:shift]:
                out = Path(tmp) / f"{rnd}-{contenders.index(who)}"
                load1 = os.getloadavg()[0]
                if who == OURS:
                    timing = run_scalelab(url, fill, out, args.segment_points, args.concurrency)
                elif who == API:
                    timing = run_api_client(url, fill, out, args.segment_points)
                else:
                    timing = run_seed(url, fill, out, args.segment_points)
                timing.load1 = load1
                timings.append((rnd, timing))
                print(f"  round {rnd} {who}: {timing.seconds:.2f} s", flush=True)
                if out.is_dir():
                    shutil.rmtree(out)
                else:
                    out.unlink()
        elsewhere = run_seed(url, fill, Path(tmp) / "tz", args.segment_points, "America/New_York")
        ok = report(fill, timings, args)
        print(
            f"seed extractor, same UTC strings under TZ=America/New_York: {elsewhere.points:,} "
            f"points of {fill.points:,} (its window moved by the zone's offset)"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
