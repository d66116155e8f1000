"""The seed project's metric extractor, re-implemented from its published behaviour.

Only for comparison (`export_throughput.py`). What the seed's extractor
(wickstjo/aalto-ensure ``docs/07_extract_metrics``, the
debnera/aalto-ensure-cluster fork's ``data_extractor/extractor.py``) does, and
this does:

- the window is given as naive ``"%Y-%m-%d %H:%M:%S"`` strings, turned into
  epoch seconds with ``datetime.strptime(...).timestamp()`` (the machine's
  local time zone: under a non-UTC zone, UTC strings name another window);
- metric names from ``/api/v1/label/__name__/values``, filtered;
- per metric name a thread (at most ``n_threads`` at once, a semaphore);
- the window split into fixed segments of ``segment_size`` seconds:
  ``(start, start + size), (start + size, start + 2 size), ...``, the last one
  shorter; each is fetched with ``/api/v1/query_range?query=NAME&start=t1&end=t2&step=Ns``
  (``requests.get``), whose boundaries are inclusive, so each inner boundary's
  point comes twice, and saved as indented JSON, one file per segment.

``count_points`` reads the files back: points, and how many of them repeat a
(series, timestamp) already seen.
"""

from __future__ import annotations

import json
import math
import os
import threading
from datetime import datetime
from pathlib import Path

import requests

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def segment_timestamps(unix_start: int, unix_end: int, batch_size: int) -> list[tuple[int, int]]:
    """The seed's split: full segments of batch_size seconds, then the rest."""
    sizes, delta = [], unix_end - unix_start
    for _ in range(math.floor(delta / batch_size)):
        sizes.append(batch_size)
        delta -= batch_size
    if delta > 0:
        sizes.append(delta)
    pairs, last = [], unix_start
    for size in sizes:
        pairs.append((last, last + size))
        last += size
    return pairs


def process_metric(
    base: Path, endpoint: str, query: str, start: int, end: int, sampling: int, size: int
) -> None:
    directory = base / query
    directory.mkdir()
    for t1, t2 in segment_timestamps(start, end, size):
        url = f"{endpoint}/api/v1/query_range?query={query}&start={t1}&end={t2}&step={sampling}s"
        results = requests.get(url, timeout=120).json()
        with open(directory / f"{t1}-{t2}.json", "w") as file:
            json.dump(results, file, indent=4)


def create_snapshot(
    endpoint: str,
    out: Path,
    start_time: str,
    end_time: str,
    sampling: int,
    segment_size: int,
    n_threads: int,
    keep: set[str],
) -> None:
    """Extract every kept metric name over the window into ``out`` (one folder per name)."""
    start = int(datetime.strptime(start_time, DATE_FORMAT).timestamp())
    end = int(datetime.strptime(end_time, DATE_FORMAT).timestamp())
    names = requests.get(f"{endpoint}/api/v1/label/__name__/values", timeout=60).json()["data"]
    gate = threading.Semaphore(n_threads)
    threads = []

    def work(name: str) -> None:
        try:
            process_metric(out, endpoint, name, start, end, sampling, segment_size)
        finally:
            gate.release()

    for name in names:
        if name not in keep:
            continue
        gate.acquire()
        thread = threading.Thread(target=work, args=(name,))
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()


def count_points(out: Path) -> tuple[int, int, int]:
    """(points, duplicate points, bytes written) of a snapshot."""
    points = duplicates = size = 0
    seen: set[tuple[str, float]] = set()
    for path in out.rglob("*.json"):
        size += os.path.getsize(path)
        for series in json.loads(path.read_text())["data"]["result"]:
            key = json.dumps(series["metric"], sort_keys=True)
            for stamp, _ in series["values"]:
                points += 1
                if (key, stamp) in seen:
                    duplicates += 1
                seen.add((key, stamp))
    return points, duplicates, size
