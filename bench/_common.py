"""Shared helpers of the stack benchmarks: isolated state, a local stack, the producer, tables.

Every benchmark runs with its own ``SCALELAB_HOME`` and ``SCALELAB_RUNS``
(fresh temporary directories unless the environment already names them), so
it never meets another run's pid files, ports or broker storage; the demo
model is shared in ``SCALELAB_MODELS`` (default ``/tmp/scalelab-bench-models``).
Whatever a benchmark starts is stopped in a ``finally``, and the end of
``isolated()`` checks that no process mentioning its directories is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from confluent_kafka import Consumer, TopicPartition

from scalelab import paths
from scalelab.components import common
from scalelab.platform.base import ComponentLaunch, Endpoints
from scalelab.platform.local.platform import LocalPlatform
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = "/tmp/scalelab-bench-models"
SCALELAB_CLI = str(Path(sys.executable).parent / "scalelab")


# -- isolation ------------------------------------------------------------------------------
@contextlib.contextmanager
def isolated(keep: bool = False) -> Iterator[dict[str, str]]:
    """Own state and run directories for this benchmark (set in ``os.environ``).

    Directories named by the caller's environment are used as they are and
    kept; those made here are removed at the end unless ``keep``.
    """
    made: list[str] = []
    saved = {
        var: os.environ.get(var) for var in ("SCALELAB_HOME", "SCALELAB_RUNS", "SCALELAB_MODELS")
    }
    for var in ("SCALELAB_HOME", "SCALELAB_RUNS"):
        if not os.environ.get(var):
            os.environ[var] = tempfile.mkdtemp(prefix=f"bench-{var[9:].lower()}-")
            made.append(os.environ[var])
    os.environ.setdefault("SCALELAB_MODELS", DEFAULT_MODELS)
    dirs = {var: os.environ[var] for var in ("SCALELAB_HOME", "SCALELAB_RUNS", "SCALELAB_MODELS")}
    print(f"state {dirs['SCALELAB_HOME']}  runs {dirs['SCALELAB_RUNS']}", flush=True)
    try:
        yield dirs
    finally:
        left = leftovers([dirs["SCALELAB_HOME"], dirs["SCALELAB_RUNS"]])
        if left:
            print(f"WARNING: processes left behind, stopping them: {left}", flush=True)
            stop_pids([pid for pid, _ in left])
        if not keep:
            for directory in made:
                shutil.rmtree(directory, ignore_errors=True)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def leftovers(markers: Sequence[str]) -> list[tuple[int, str]]:
    """Processes (other than this one) whose command line mentions one of ``markers``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if any(marker in cmdline for marker in markers):
            found.append((proc.pid, cmdline[:120]))
    return found


def stop_pids(pids: Sequence[int]) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


# -- specs ----------------------------------------------------------------------------------
def make_spec(name: str, **sections: Any) -> ExperimentSpec:
    """An ExperimentSpec from plain dicts; defaults fill the rest (``load`` is required)."""
    return ExperimentSpec.model_validate({"name": name, **sections})


# -- a local stack --------------------------------------------------------------------------
class LocalStack:
    """Broker, Prometheus and node exporter as ``scalelab run`` starts them; torn down on exit."""

    def __init__(self, spec: ExperimentSpec, label: str = "bench"):
        self.spec = spec
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{label}"
        self.dir = paths.runs_dir() / self.run_id
        self.platform = LocalPlatform(spec, self.run_id, self.dir, paths.state_dir(), False)
        self.endpoints: Endpoints | None = None

    def __enter__(self) -> LocalStack:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self.endpoints = self.platform.start_infrastructure()
        except BaseException:
            self.platform.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.platform.teardown()

    @property
    def bootstrap(self) -> str:
        assert self.endpoints is not None
        return self.endpoints.bootstrap


@dataclass
class ProducerRun:
    report: dict[str, Any]  # producer.json
    wall_s: float  # process start to exit
    run_dir: Path


def run_producer(
    stack: LocalStack, spec: ExperimentSpec, tag: str, timeout: float = 300
) -> ProducerRun:
    """Run ``scalelab.components.producer`` as ``scalelab run`` does, wait for it to exit."""
    run_dir = stack.dir / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.yaml"
    spec_path.write_text(dump_spec(spec))
    name = f"producer-{tag}"
    args = ["--spec", str(spec_path), "--bootstrap", stack.bootstrap]
    args += ["--run-id", f"{stack.run_id}-{tag}", "--run-dir", str(run_dir)]
    platform = stack.platform
    started = time.perf_counter()
    platform.start_component(
        ComponentLaunch(name, "producer", "scalelab.components.producer", args)
    )
    platform.mark_may_finish(name)
    proc = platform.processes[name]
    try:
        while proc.exit_code() is None:
            platform.check_health()
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{name} still running after {timeout:g} s")
            time.sleep(0.02)
        wall = time.perf_counter() - started
        if proc.exit_code() != 0:
            raise RuntimeError(f"{name} exited with {proc.exit_code()}:\n{proc.log_tail()}")
    finally:
        platform.stop_component(name, timeout=10)
        platform.targets.pop(name, None)
    report = json.loads((run_dir / "producer.json").read_text())
    return ProducerRun(report, wall, run_dir)


# -- reading a topic ------------------------------------------------------------------------
def read_send_times(bootstrap: str, topic: str, timeout: float = 120) -> dict[str, np.ndarray]:
    """seq, intended_ns and sent_ns of every message of ``topic``, in sequence order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-reader",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    seqs: list[int] = []
    intended: list[int] = []
    sent: list[int] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        consumer.assign(parts)
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                headers = common.header_dict(message.headers())
                seqs.append(int(headers["seq"]))
                intended.append(int(headers["intended_ns"]))
                sent.append(int(headers["sent_ns"]))
                if int(message.offset() or 0) + 1 >= ends[int(message.partition() or 0)]:
                    remaining.discard(int(message.partition() or 0))
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end in {timeout:g} s")
    finally:
        consumer.close()
    order = np.argsort(seqs, kind="stable")
    return {
        "seq": np.asarray(seqs)[order],
        "intended_ns": np.asarray(intended, dtype=np.int64)[order],
        "sent_ns": np.asarray(sent, dtype=np.int64)[order],
    }


# -- processes ------------------------------------------------------------------------------
def tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants."""
    total = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (live, and waited-for children)."""
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


# -- printing -------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain right-aligned text table (first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def verdict(ok: bool, text: str) -> str:
    return f"VERDICT: {'PASS' if ok else 'FAIL'} - {text}"


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


# -- machine load during a measurement ------------------------------------------------------
def busy_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, idle and iowait excluded)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class LoadWindow:
    """What the machine did while one contender ran: its own CPU apart from everyone else's."""

    wall_s: float
    load1: float  # 1-minute load average at the start
    busy_s: float  # CPU seconds of the whole machine
    broker_s: float  # CPU seconds of the broker (and its children)
    bench_s: float  # CPU seconds of this benchmark process

    def others_cores(self, contender_s: float) -> float:
        """Cores used by processes other than the contender, the broker and this benchmark."""
        return max(0.0, self.busy_s - contender_s - self.broker_s - self.bench_s) / self.wall_s


class LoadMeter:
    """``with LoadMeter(broker_pid) as m: ...``; then ``m.window`` (a LoadWindow)."""

    def __init__(self, broker_pid: int | None):
        self.broker_pid = broker_pid
        self.window: LoadWindow | None = None

    def _broker(self) -> float:
        return cpu_seconds(self.broker_pid) if self.broker_pid else 0.0

    def __enter__(self) -> LoadMeter:
        self.load1 = os.getloadavg()[0]
        self.t0, self.busy0 = time.perf_counter(), busy_cpu_s()
        self.broker0, self.bench0 = self._broker(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.window = LoadWindow(
            wall_s=time.perf_counter() - self.t0,
            load1=self.load1,
            busy_s=busy_cpu_s() - self.busy0,
            broker_s=self._broker() - self.broker0,
            bench_s=time.process_time() - self.bench0,
        )


def children_cpu_s() -> float:
    """User + system CPU of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spread(values: Sequence[float], fmt: str = "{:.3g}") -> str:
    """`median [min..max]` of values."""
    if not values:
        return "-"
    return f"{fmt.format(median(values))} [{fmt.format(min(values))}..{fmt.format(max(values))}]"


def new_topic(
    bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create one topic (``config``: topic settings, e.g. message.timestamp.type)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    for future in admin.create_topics([topic], operation_timeout=30).values():
        future.result()


def drop_topic(bootstrap: str, name: str) -> None:
    """Delete one topic (to free the disk a run used)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for future in admin.delete_topics([name], operation_timeout=30).values():
        future.result()
