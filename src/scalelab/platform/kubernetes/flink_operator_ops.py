"""`scalelab cluster flink-operator install|uninstall`: the Flink Kubernetes Operator, pinned.

As for Strimzi: the values file and the helm command are written first (`--dry-run` stops
there), then helm installs the chart from Apache's release repository. The operator watches
every namespace (so a run can use any `platform.namespace`), and its validating webhook is
off: it needs cert-manager, which a bare cluster does not have. A run's FlinkDeployment is
a standalone session cluster and needs no API rights of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalelab.platform.kubernetes.api import Cluster
from scalelab.platform.kubernetes.cluster_ops import OperatorChartOps
from scalelab.platform.kubernetes.config import FlinkCluster, KubernetesSpec
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.helm import Chart, Kube
from scalelab.platform.kubernetes.manifests.flink_operator import API_VERSION, KIND
from scalelab.platform.kubernetes.plan import Plan

CHART = "flink-kubernetes-operator"
RELEASE = "flink-kubernetes-operator"
INSTALL_HINT = "run `scalelab cluster flink-operator install`, or set flink.mode: scalelab"


def repo_url(version: str) -> str:
    """Apache publishes each operator release's chart in its own repository."""
    return f"https://downloads.apache.org/flink/flink-kubernetes-operator-{version}/"


def operator_chart(flink: FlinkCluster) -> Chart:
    return Chart(
        RELEASE,
        flink.operator_namespace,
        CHART,
        flink.operator_version,
        repo_url(flink.operator_version),
    )


def operator_values() -> dict[str, Any]:
    """Every namespace watched; no webhook (it needs cert-manager)."""
    return {"watchNamespaces": [], "webhook": {"create": False}}


def require_operator(cluster: Cluster, plan: Plan) -> None:
    """A run asking for the operator fails before anything is applied when it is missing."""
    wanted = plan.flink is not None and plan.flink_mode == "operator"
    if wanted and not cluster.has_kind(API_VERSION, KIND):
        raise PrerequisiteError(
            f"Flink Kubernetes Operator custom resources ({API_VERSION} {KIND})", INSTALL_HINT
        )


class FlinkOperatorOps(OperatorChartOps):
    """The Flink Kubernetes Operator's chart, as `settings.flink` pins it."""

    def __init__(self, settings: KubernetesSpec, kube: Kube, out_dir: Path):
        chart = operator_chart(settings.flink)
        super().__init__("flink-operator", chart, operator_values(), kube, out_dir)
