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

from scalelab.platform.kubernetes import helm
from scalelab.platform.kubernetes.api import Cluster
from scalelab.platform.kubernetes.cluster_ops import Outcome, _write
from scalelab.platform.kubernetes.config import FlinkCluster, KubernetesSpec
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.helm import Chart, Kube
from scalelab.platform.kubernetes.manifests.flink_operator import API_VERSION, KIND
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.kubernetes.render import to_yaml

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


class FlinkOperatorOps:
    """The Flink Kubernetes Operator's chart, as `settings.flink` pins it."""

    def __init__(self, settings: KubernetesSpec, kube: Kube, out_dir: Path):
        self.chart = operator_chart(settings.flink)
        self.kube = kube
        self.out = out_dir

    def prepare(self) -> Outcome:
        outcome = Outcome()
        values = _write(
            self.out / "values-flink-operator.yaml", to_yaml(operator_values()), outcome
        )
        outcome.commands = [self.chart.install(values, self.kube)]
        _write(self.out / "install-flink-operator.sh", helm.script(outcome.commands), outcome)
        return outcome

    def install(self) -> Outcome:
        helm.find_helm()
        outcome = self.prepare()
        for command in outcome.commands:
            helm.run(command)
        return outcome

    def uninstall(self) -> Outcome:
        outcome = Outcome(commands=[self.chart.uninstall(self.kube)])
        if not helm.run_uninstall(outcome.commands[0]):
            outcome.notes.append("flink-kubernetes-operator: was not installed")
        return outcome
