"""Prometheus and the node exporter from Debian's packages, with a generated config.

Targets live in a file_sd JSON file that Prometheus watches, so components
started after Prometheus are scraped without a restart.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import httpx

from scalelab.errors import MissingDependencyError
from scalelab.platform.process import ProcessSpec

INSTALL_HINT = (
    "run `make prometheus` (apt-get install prometheus prometheus-node-exporter, Debian's packages)"
)
PROMETHEUS_CANDIDATES = ("prometheus",)
NODE_EXPORTER_CANDIDATES = ("prometheus-node-exporter", "node_exporter")
NODE_COLLECTORS = ("cpu", "meminfo", "loadavg", "netdev", "diskstats", "stat", "rapl", "hwmon")


def find_binary(candidates: tuple[str, ...], what: str) -> str:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise MissingDependencyError(what, INSTALL_HINT)


def prometheus_version() -> str:
    try:
        binary = find_binary(PROMETHEUS_CANDIDATES, "prometheus")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (MissingDependencyError, OSError, subprocess.SubprocessError):
        return "unknown"
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split()[2] if first and len(first[0].split()) > 2 else "unknown"


def prometheus_config(scrape_interval_s: float, targets_file: Path) -> str:
    interval = f"{max(1, round(scrape_interval_s * 1000))}ms"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "scalelab",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }
    return json.dumps(config, indent=2)  # JSON is valid YAML


def write_targets(targets_file: Path, targets: dict[str, tuple[int, dict[str, str]]]) -> None:
    """Atomically rewrite the scrape targets: name -> (port, labels)."""
    groups = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"component": name, **labels}}
        for name, (port, labels) in sorted(targets.items())
    ]
    tmp = targets_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2))
    tmp.replace(targets_file)


def read_targets(targets_file: Path) -> dict[str, tuple[int, dict[str, str]]]:
    """The scrape targets `write_targets` wrote: name -> (port, labels)."""
    targets = {}
    for group in json.loads(targets_file.read_text()):
        labels = dict(group["labels"])
        name = labels.pop("component")
        targets[name] = (int(group["targets"][0].rsplit(":", 1)[1]), labels)
    return targets


def prometheus_process(
    port: int, config_file: Path, data_dir: Path, retention_s: float, log: Path
) -> ProcessSpec:
    argv = [
        find_binary(PROMETHEUS_CANDIDATES, "prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={int(retention_s)}s",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    # SIGTERM when scalelab dies: Prometheus stops in well under a second and keeps its TSDB
    # consistent for a later `scalelab export`.
    return ProcessSpec(
        name="prometheus",
        argv=argv,
        log_path=log,
        ports={"http": port},
        death_signal=signal.SIGTERM,
    )


def node_exporter_process(port: int, log: Path) -> ProcessSpec:
    argv = [
        find_binary(NODE_EXPORTER_CANDIDATES, "prometheus-node-exporter"),
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in NODE_COLLECTORS),
        "--log.level=warn",
    ]
    return ProcessSpec(name="node-exporter", argv=argv, log_path=log, ports={"http": port})


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def unscraped_targets(url: str, expected: set[str]) -> set[str]:
    """Components Prometheus has not yet scraped successfully at least once."""
    try:
        response = httpx.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=2.0)
        active = response.json()["data"]["activeTargets"]
    except (httpx.HTTPError, ValueError, KeyError):
        return set(expected)
    scraped = {
        t["labels"].get("component", "")
        for t in active
        if t.get("health") == "up" and not t.get("lastScrape", "").startswith("0001")
    }
    return expected - scraped
