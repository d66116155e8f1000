"""Fill a throwaway Prometheus with generated history by backfill, for benchmarks.

The data is OpenMetrics text turned into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics``; the server is the Debian
``prometheus`` binary on a free port of 127.0.0.1 with no scrape targets, so
nothing but the backfilled blocks is in it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
_CONFIG = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"


@dataclass(frozen=True)
class Fill:
    """What was backfilled: metric names, series per name, and the sample times."""

    names: list[str]
    series_per_name: int
    first: int
    """Epoch seconds of the first sample of every series."""
    last: int
    """Epoch seconds of the last sample (inclusive), one sample a second."""

    @property
    def points(self) -> int:
        return len(self.names) * self.series_per_name * (self.last - self.first + 1)


def write_openmetrics(path: Path, names: int, series_per_name: int, points: int, end: int) -> Fill:
    """Write gauges ``scalelab_bench_m<i>{instance, job, component, pod}``, one sample a second.

    Even-numbered metrics count up in integers (like counters), odd ones are
    floats with three decimals (like gauges), so the JSON carries both shapes.
    """
    first = end - points + 1
    stamps = [str(t) for t in range(first, end + 1)]
    rng = np.random.default_rng(42)
    metric_names = [f"scalelab_bench_m{i}" for i in range(names)]
    with path.open("w") as out:
        for index, name in enumerate(metric_names):
            out.write(f"# HELP {name} Generated benchmark gauge {index}.\n# TYPE {name} gauge\n")
            for series in range(series_per_name):
                labels = _labels(series)
                values = _values(rng, points, counter=index % 2 == 0)
                lines = zip(values, stamps, strict=True)
                out.write("".join(f"{name}{labels} {v} {t}\n" for v, t in lines))
        out.write("# EOF\n")
    return Fill(metric_names, series_per_name, first, end)


def _labels(series: int) -> str:
    return (
        f'{{instance="node-{series % 10}:9100",job="bench",'
        f'component="worker",pod="worker-{series}"}}'
    )


def _values(rng: np.random.Generator, points: int, *, counter: bool) -> list[str]:
    if counter:
        return [str(v) for v in np.cumsum(rng.integers(0, 50, points)).tolist()]
    return [f"{v:.3f}" for v in (rng.random(points) * 100.0).tolist()]


def create_blocks(openmetrics: Path, data_dir: Path) -> None:
    """Turn the OpenMetrics file into TSDB blocks under ``data_dir``."""
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def prometheus(data_dir: Path, ready_timeout: float = 30.0) -> Iterator[str]:
    """Run Prometheus over ``data_dir`` and yield its URL; always stopped on exit."""
    config = data_dir.parent / "prometheus.yml"
    config.write_text(_CONFIG)
    port = free_port()
    log = (data_dir.parent / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=10y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, ready_timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"prometheus at {url} not ready after {timeout} s")


@contextlib.contextmanager
def filled_prometheus(
    names: int = 10, series_per_name: int = 100, points: int = 3600, hours_ago: int = 2
) -> Iterator[tuple[str, Fill]]:
    """Backfill an hour (by default) of data ending ``hours_ago`` hours ago and serve it."""
    workdir = Path(tempfile.mkdtemp(prefix="scalelab-bench-prom-"))
    try:
        end = int(time.time()) - hours_ago * 3600
        source = workdir / "data.om"
        fill = write_openmetrics(source, names, series_per_name, points, end)
        data_dir = workdir / "data"
        data_dir.mkdir()
        create_blocks(source, data_dir)
        source.unlink()
        with prometheus(data_dir) as url:
            yield url, fill
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
