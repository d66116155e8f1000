"""The idle cost of the project's single-node cluster (`make cluster`): CPU and memory.

Reads the supervised processes' pid files under .cluster/run/pids (etcd, the control
plane, containerd, kubelet, kube-proxy, CoreDNS, metrics-server) and finds the cluster
containerd's shims with the pods' processes below them (counted under containerd), then
samples their CPU time (user + system, from psutil) over a window, and the whole
machine's busy CPU over the same window for reference. Run it with the cluster up and
nothing else running on it or beside it.

    .venv/bin/python bench/cluster_idle.py [--seconds 60] [--settle 30]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PIDS = ROOT / ".cluster" / "run" / "pids"


def cluster_processes() -> dict[str, psutil.Process]:
    """Each supervised process by name, and every descendant under its own pid."""
    found: dict[str, psutil.Process] = {}
    for pid_file in sorted(PIDS.glob("*.pid")):
        try:
            process = psutil.Process(int(pid_file.read_text().split()[0]))
        except (psutil.NoSuchProcess, ValueError):
            continue
        found[pid_file.stem] = process
        for child in process.children(recursive=True):
            found[f"{pid_file.stem}/{child.name()}-{child.pid}"] = child
    socket = str(ROOT / ".cluster" / "run" / "containerd.sock")
    for shim in psutil.process_iter(["name", "cmdline"]):
        if (shim.info["name"] or "").startswith("containerd-shim") and socket in " ".join(
            shim.info["cmdline"] or []
        ):  # shims leave containerd's tree; the pods' processes run below them
            for process in [shim, *shim.children(recursive=True)]:
                found[f"containerd/{process.name()}-{process.pid}"] = process
    return found


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="sampling window")
    parser.add_argument("--settle", type=float, default=0.0, help="wait before sampling")
    args = parser.parse_args()
    if not PIDS.is_dir():
        print(f"no cluster: {PIDS} does not exist (make cluster)")
        return 2
    time.sleep(args.settle)
    processes = cluster_processes()
    before = {name: cpu_seconds(p) for name, p in processes.items()}
    host_before = psutil.cpu_times()
    started = time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    host_after = psutil.cpu_times()
    used = {name: cpu_seconds(p) - before[name] for name, p in processes.items()}
    rss = sum(p.memory_info().rss for p in processes.values() if p.is_running())
    idle = (host_after.idle + host_after.iowait) - (host_before.idle + host_before.iowait)
    total = sum(host_after) - sum(host_before)
    print(f"window {elapsed:.1f} s, {psutil.cpu_count()} cores, {len(processes)} processes")
    for name in sorted(used, key=lambda n: -used[n]):
        if not name.count("/"):
            children = sum(v for k, v in used.items() if k.startswith(f"{name}/"))
            print(f"  {name:<24} {100 * (used[name] + children) / elapsed:6.2f} % of a core")
    cluster = sum(used.values())
    print(f"cluster: {100 * cluster / elapsed:.2f} % of a core, RSS {rss / 2**20:.0f} MiB")
    print(f"host busy: {100 * (1 - idle / total):.2f} % of all cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
