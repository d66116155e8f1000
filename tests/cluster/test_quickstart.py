"""`scalelab run examples/kubernetes.yaml` on the real cluster, through the CLI in a subprocess.

Self-contained mode: the run's own Kafka and Prometheus, the image `make image`
imported into the node. What a user relies on: a VALID verdict, nothing lost,
the QoS and metrics tables with broker, component and container series, and
nothing left on the cluster afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")
import pyarrow.parquet as pq  # noqa: E402

from scalelab.platform.kubernetes import labels  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kubernetes.yaml"


def run_cli(tmp_path: Path, *overrides: str) -> tuple[dict[str, Any], Path]:
    env = {**os.environ, "SCALELAB_RUNS": str(tmp_path / "runs"), "COLUMNS": "200"}
    sets = [arg for override in overrides for arg in ("--set", override)]
    done = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "run", str(EXAMPLE), *sets],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env=env,
    )
    runs = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").is_dir() else []
    assert len(runs) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((runs[0] / "run.json").read_text())
    assert done.returncode == 0, (record.get("errors"), done.stdout[-3000:], done.stderr[-3000:])
    return record, runs[0]


def test_the_quickstart_is_valid_loses_nothing_and_leaves_nothing(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    namespace = f"scalelab-q-{secrets.token_hex(3)}"
    record, run_dir = run_cli(
        tmp_path, f"platform.namespace={namespace}", "load.duration=40s", "load.warmup=5s"
    )
    assert record["status"] == "succeeded", record["errors"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["accounting"]["lost"] == 0 and summary["accounting"]["ok"]
    assert summary["verdict"]["valid"], summary["verdict"]["reasons"]
    qos = pq.read_table(run_dir / "qos.parquet")
    assert qos.num_rows >= summary["accounting"]["processed"] > 0
    metrics = pq.read_table(run_dir / "metrics.parquet", columns=["metric"]).column(0)
    names = set(metrics.unique().to_pylist())
    assert any(n.startswith("kafka_server_") for n in names), sorted(names)[:50]
    assert any(n.startswith("scalelab_worker_") for n in names)
    assert "container_cpu_usage_seconds_total" in names
    assert (run_dir / "report.html").is_file()
    assert any((run_dir / "logs").glob("workers-*.log"))
    assert cluster.get("v1", "Namespace", namespace) is None
    selector = labels.run_selector(record["id"])
    assert cluster.list("rbac.authorization.k8s.io/v1", "ClusterRole", None, selector) == []
