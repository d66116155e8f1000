"""The monitoring stack scalelab installs: pins, values, Grafana's password, dashboards, Kepler."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from scalelab.errors import ConfigError, MissingDependencyError
from scalelab.platform.kubernetes import dashboards, helm, kepler, metrics, monitoring
from scalelab.platform.kubernetes.cluster_ops import MonitoringStackOps, StrimziOps
from scalelab.platform.kubernetes.config import KubernetesSpec
from scalelab.platform.kubernetes.helm import Kube


def walk(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items()] + [p for v in value.values() for p in walk(v)]
    if isinstance(value, list):
        return [p for v in value for p in walk(v)]
    return []


def test_charts_are_pinned() -> None:
    stack = KubernetesSpec().monitoring
    prometheus, kepler_chart = monitoring.prometheus_chart(stack), monitoring.kepler_chart(stack)
    assert (prometheus.chart, prometheus.version) == ("kube-prometheus-stack", "67.8.0")
    assert kepler_chart.chart == "oci://quay.io/sustainable_computing_io/charts/kepler"
    assert re.fullmatch(r"\d+\.\d+\.\d+", kepler_chart.version)
    command = kepler_chart.install("values.yaml", Kube("/k/config", "lab"))
    assert command[command.index("--version") + 1] == kepler_chart.version
    assert command[-4:] == ["--kubeconfig", "/k/config", "--kube-context", "lab"]
    strimzi = monitoring.strimzi_chart(KubernetesSpec().kafka)
    assert (strimzi.version, strimzi.repo) == ("0.47.0", "https://strimzi.io/charts/")


def test_grafana_password_is_never_a_default() -> None:
    values = monitoring.prometheus_values(KubernetesSpec().monitoring)
    keys = {k for k, _ in walk(values)}
    assert "adminPassword" not in keys and "password" not in keys
    assert values["grafana"]["admin"] == {
        "existingSecret": "scalelab-grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    users = KubernetesSpec.model_validate({"monitoring": {"grafana_secret": "mine"}}).monitoring
    assert monitoring.prometheus_values(users)["grafana"]["admin"]["existingSecret"] == "mine"


def test_prometheus_selects_every_monitor_and_nothing_is_exposed() -> None:
    values = monitoring.prometheus_values(KubernetesSpec().monitoring)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert {v for k, v in walk(values) if k == "type"} == {"ClusterIP"}
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"], sidecar["searchNamespace"]) == (
        "grafana_dashboard",
        "1",
        "ALL",
    )


def test_dry_run_writes_values_dashboards_and_commands(tmp_path: Path) -> None:
    ops = MonitoringStackOps(KubernetesSpec(), Kube(), tmp_path)
    outcome = ops.prepare()
    names = sorted(p.relative_to(tmp_path).as_posix() for p in outcome.written)
    assert names == [
        "dashboards/scalelab-cluster-dashboard.yaml",
        "dashboards/scalelab-experiment-dashboard.yaml",
        "install.sh",
        "values-kepler.yaml",
        "values-kube-prometheus-stack.yaml",
    ]
    script = (tmp_path / "install.sh").read_text()
    assert "helm upgrade --install scalelab-monitoring kube-prometheus-stack" in script
    assert "/dev/urandom" in script and "prom-operator" not in script
    assert [c[:4] for c in outcome.commands] == [
        ["helm", "upgrade", "--install", "scalelab-monitoring"],
        ["helm", "upgrade", "--install", "kepler"],
    ]


def test_missing_helm_names_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError) as caught:
        MonitoringStackOps(KubernetesSpec(), Kube(), tmp_path).install(cluster=None)  # type: ignore[arg-type]
    assert caught.value.what == "helm" and "helm.sh/docs/intro/install" in caught.value.install_hint
    assert not list(tmp_path.glob("*.yaml"))  # nothing written or applied before the check


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


def test_strimzi_watches_every_namespace(tmp_path: Path) -> None:
    outcome = StrimziOps(KubernetesSpec(), Kube(), tmp_path).prepare()
    assert "watchAnyNamespace: true" in (tmp_path / "values-strimzi.yaml").read_text()
    assert outcome.commands[0][:5] == [
        "helm",
        "upgrade",
        "--install",
        "strimzi",
        "strimzi-kafka-operator",
    ]


def test_helm_failures_keep_the_command_and_output(fake_helm: Path) -> None:
    failing = fake_helm.parent / "bin" / "helm"
    failing.write_text("#!/bin/sh\necho 'Error: release: not found' >&2\nexit 1\n")
    assert helm.run_uninstall(["helm", "uninstall", "kepler"]) is False
    failing.write_text("#!/bin/sh\necho 'Error: cluster unreachable' >&2\nexit 1\n")
    with pytest.raises(helm.HelmError, match="cluster unreachable"):
        helm.run(["helm", "upgrade", "--install", "x", "y"])


def exported_names() -> set[str]:
    """Every metric family the components register (importing them registers them)."""
    import scalelab.components.producer  # noqa: F401
    import scalelab.components.tracker  # noqa: F401
    import scalelab.components.worker  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def test_dashboards_use_only_metrics_the_components_export() -> None:
    exported = exported_names()
    used = set()
    for metric in metrics.experiment_metrics("0.11"):
        used.update(re.findall(r"\bscalelab_[a-z_]+", metric.query))
    assert used, "the experiment dashboard plots scalelab's own metrics"
    for name in used:
        base = re.sub(r"_bucket$", "", name)
        assert name in exported or base in exported or f"{base}_total" in exported, name


def test_dashboards_cover_the_experiment_and_ship_as_configmaps() -> None:
    titles = " ".join(m.title.lower() for m in metrics.experiment_metrics("0.11"))
    for word in ("rate", "throughput", "lag", "latency", "cpu", "power"):
        assert word in titles
    maps = dashboards.dashboard_configmaps("0.11", "monitoring")
    assert [m["metadata"]["labels"]["grafana_dashboard"] for m in maps] == ["1", "1"]
    board = json.loads(maps[0]["data"]["scalelab-experiment.json"])
    assert board["uid"] == "scalelab-experiment"
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "namespace", "run_id"}
    assert all(p["targets"][0]["expr"] for p in board["panels"])
    positions = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]}
    assert len(positions) == len(board["panels"])


@pytest.mark.parametrize(("version", "pod_metric", "node_metric"), [
    ("0.7.12", "kepler_container_joules_total", "kepler_node_platform_joules_total"),
    ("release-0.9.0", "kepler_container_joules_total", "kepler_node_platform_joules_total"),
    ("0.10.2", "kepler_container_cpu_joules_total", "kepler_node_cpu_joules_total"),
    ("v0.11.1", "kepler_pod_cpu_joules_total", "kepler_node_cpu_joules_total"),
])  # fmt: skip
def test_kepler_metric_names_by_version(version: str, pod_metric: str, node_metric: str) -> None:
    assert pod_metric in kepler.pod_power(version, "scalelab", "30s")
    assert node_metric in kepler.node_power(version, "30s")
    assert "sum by (pod)" in kepler.pod_power(version, "scalelab", "30s")


def test_old_or_bad_kepler_versions_are_refused() -> None:
    with pytest.raises(ConfigError, match="older than 0.7"):
        kepler.metrics_for("0.6.1")
    with pytest.raises(ConfigError, match="not a Kepler version"):
        kepler.metrics_for("latest")


def test_export_queries_are_concrete() -> None:
    queries = dict(metrics.export_queries("run-1", "scalelab", 1.0, "0.11"))
    assert "$" not in "".join(queries.values()).replace('"$1"', "")
    assert 'run_id=~"run-1"' in queries["throughput"]
    assert "[4s]" in queries["throughput"]


def test_energy_counters_for_the_analysis() -> None:
    assert kepler.energy_counters("0.7.12") == {"pod": "kepler_container_joules_total"}
    assert kepler.energy_counters("0.10.0") == {"pod": "kepler_container_cpu_joules_total"}
    assert kepler.energy_counters("0.11.1") == {"pod": "kepler_pod_cpu_joules_total"}
