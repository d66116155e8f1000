"""`scalelab cluster monitoring install` on the real cluster (helm itself is a stand-in: the
charts cannot be fetched here): Grafana's password generated once into a Secret and kept,
the dashboards as ConfigMaps, then helm called with the pinned charts."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scalelab.platform.kubernetes.cluster_ops import MonitoringStackOps
from scalelab.platform.kubernetes.config import KubernetesSpec
from scalelab.platform.kubernetes.helm import Kube


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `helm` on PATH that records its arguments."""
    log = tmp_path / "helm.log"
    script = tmp_path / "bin" / "helm"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def stack_namespace(cluster: Any) -> Iterator[str]:
    name = f"scalelab-mon-{secrets.token_hex(3)}"
    yield name
    cluster.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def test_install_generates_the_secret_once_then_runs_helm(
    cluster: Any, fake_helm: Path, stack_namespace: str, tmp_path: Path
) -> None:
    settings = KubernetesSpec.model_validate({"monitoring": {"namespace": stack_namespace}})
    outcome = MonitoringStackOps(settings, Kube(), tmp_path / "out").install(cluster)
    secret = cluster.get("v1", "Secret", "scalelab-grafana-admin", stack_namespace)
    assert secret is not None

    password = base64.b64decode(secret["data"]["admin-password"]).decode()
    assert len(password) >= 24
    assert all(password not in p.read_text() for p in outcome.written)
    boards = cluster.list("v1", "ConfigMap", stack_namespace, "grafana_dashboard")
    assert {c["metadata"]["name"] for c in boards} == {
        "scalelab-experiment-dashboard",
        "scalelab-cluster-dashboard",
    }
    ran = fake_helm.read_text().splitlines()
    assert ran[0].startswith("upgrade --install scalelab-monitoring kube-prometheus-stack")
    assert ran[1].startswith("upgrade --install kepler oci://")
    again = MonitoringStackOps(settings, Kube(), tmp_path / "out").install(cluster)
    kept = cluster.get("v1", "Secret", "scalelab-grafana-admin", stack_namespace)
    assert base64.b64decode(kept["data"]["admin-password"]).decode() == password
    assert "from Secret" in again.notes[0]
