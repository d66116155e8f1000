"""The CPU sampler tells the run's own CPU from a busy neighbour's, with real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from scalelab.run.resources import ORCHESTRATOR, CpuSampler

BURN = (
    "import time\n"
    "while time.process_time() < 0.6: pass\n"  # 0.6 s of CPU, however long that takes here
    "print('done', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[str]]:
    """A process that burns 0.6 CPU-seconds, says so, then idles until killed."""
    proc = subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait(10)


@pytest.fixture
def idler() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(10)


def burned(proc: subprocess.Popen[str]) -> float:
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    return float(sum(psutil.Process(proc.pid).cpu_times()[:2]))


def test_a_busy_process_outside_the_run_is_foreign_cpu(
    burner: subprocess.Popen[str], idler: subprocess.Popen[str]
) -> None:
    sampler = CpuSampler()
    sampler.sample({"worker-0": idler.pid})
    foreign = burned(burner)
    sampler.sample({"worker-0": idler.pid})
    host = sampler.host_usage()
    assert host["foreign_seconds"] >= 0.8 * foreign
    assert host["busy_seconds"] >= host["run_seconds"] + host["foreign_seconds"] - 1e-6
    assert host["foreign_share"] is not None and host["foreign_share"] > 0
    assert set(sampler.usage()) == {"worker-0", ORCHESTRATOR}


def test_the_same_process_as_a_component_is_the_runs_own(burner: subprocess.Popen[str]) -> None:
    sampler = CpuSampler()
    sampler.sample({"worker-0": burner.pid})
    own = burned(burner)
    sampler.sample({"worker-0": burner.pid})
    usage = sampler.usage()
    assert usage["worker-0"]["cpu_seconds"] >= 0.5 * own
    assert sampler.host_usage()["run_seconds"] >= usage["worker-0"]["cpu_seconds"]


def test_without_local_components_there_is_no_foreign_share() -> None:
    sampler = CpuSampler()
    sampler.sample({})
    sampler.sample({})
    assert sampler.usage() == {}
    assert sampler.host_usage()["foreign_share"] is None
