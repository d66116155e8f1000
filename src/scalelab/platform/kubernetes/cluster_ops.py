"""`scalelab cluster ...`: install or remove the monitoring stack and Strimzi, clean up runs.

Every install first writes what it will use (values files, dashboard
ConfigMaps, the commands as a script) into an output directory; `--dry-run`
stops there. The Grafana password is never written: the script creates the
Secret from random bytes, a real install generates it into the cluster.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.platform.kubernetes import dashboards, helm, labels, monitoring
from scalelab.platform.kubernetes.api import Cluster
from scalelab.platform.kubernetes.config import KubernetesSpec
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.helm import Chart, Kube
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.render import to_yaml


@dataclass
class Outcome:
    written: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _write(path: Path, text: str, outcome: Outcome) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    outcome.written.append(path)
    return str(path)


class MonitoringStackOps:
    """kube-prometheus-stack, Kepler and the dashboards, as `settings.monitoring` pins them."""

    def __init__(self, settings: KubernetesSpec, kube: Kube, out_dir: Path):
        self.stack = settings.monitoring
        self.kepler_version = settings.kepler_version
        self.kube = kube
        self.out = out_dir
        self.charts = (monitoring.prometheus_chart(self.stack), monitoring.kepler_chart(self.stack))

    def boards(self) -> list[Manifest]:
        return dashboards.dashboard_configmaps(self.kepler_version, self.stack.namespace)

    def prepare(self) -> Outcome:
        """Write values, dashboards and install.sh; the helm commands in `commands`."""
        outcome = Outcome()
        prometheus_values = _write(
            self.out / "values-kube-prometheus-stack.yaml",
            to_yaml(monitoring.prometheus_values(self.stack)),
            outcome,
        )
        kepler_values = _write(
            self.out / "values-kepler.yaml", to_yaml(monitoring.kepler_values()), outcome
        )
        for board in self.boards():
            _write(
                self.out / "dashboards" / f"{board['metadata']['name']}.yaml",
                to_yaml(board),
                outcome,
            )
        outcome.commands = [
            self.charts[0].install(prometheus_values, self.kube),
            self.charts[1].install(kepler_values, self.kube),
        ]
        _write(self.out / "install.sh", self._script(outcome.commands), outcome)
        return outcome

    def _script(self, commands: list[list[str]]) -> str:
        kubectl = shlex.join(["kubectl", *self.kube.kubectl_flags()])
        ns, secret = self.stack.namespace, monitoring.grafana_secret_name(self.stack)
        lines = [f"{kubectl} create namespace {ns} --dry-run=client -o yaml | {kubectl} apply -f -"]
        if not self.stack.grafana_secret:
            lines.append(
                f"{kubectl} -n {ns} get secret {secret} >/dev/null 2>&1 || {kubectl} -n {ns} "
                f"create secret generic {secret} --from-literal={monitoring.USER_KEY}=admin "
                f'--from-literal={monitoring.PASSWORD_KEY}="$(head -c 24 /dev/urandom | base64)"'
            )
        lines.append(f"{kubectl} apply --server-side -f {shlex.quote(str(self.out))}/dashboards/")
        return helm.script(commands, tuple(lines))

    def install(self, cluster: Cluster) -> Outcome:
        helm.find_helm()  # fail before touching the cluster
        outcome = self.prepare()
        cluster.apply(monitoring.namespace(self.stack.namespace))
        outcome.notes.append(self._ensure_secret(cluster))
        for board in self.boards():
            cluster.apply(board)
        for command in outcome.commands:
            helm.run(command)
        return outcome

    def _ensure_secret(self, cluster: Cluster) -> str:
        ns, name = self.stack.namespace, monitoring.grafana_secret_name(self.stack)
        read = (
            f"kubectl -n {ns} get secret {name} -o jsonpath='{{.data."
            f"{monitoring.PASSWORD_KEY}}}' | base64 -d"
        )
        if cluster.get("v1", "Secret", name, ns) is not None:
            return f"Grafana admin password: from Secret {ns}/{name} ({read})"
        if self.stack.grafana_secret:
            raise PrerequisiteError(
                f"Secret {ns}/{name} (monitoring.grafana_secret)",
                f"create it with keys {monitoring.USER_KEY} and "
                f"{monitoring.PASSWORD_KEY}, or unset grafana_secret",
            )
        cluster.apply(monitoring.grafana_secret(ns, secrets.token_urlsafe(24)))
        return f"Grafana admin password: generated into Secret {ns}/{name} ({read})"

    def uninstall(self, cluster: Cluster) -> Outcome:
        outcome = Outcome(commands=[c.uninstall(self.kube) for c in reversed(self.charts)])
        for command in outcome.commands:
            if not helm.run_uninstall(command):
                outcome.notes.append(f"{command[2]}: was not installed")
        selector = f"{labels.MANAGED_BY}=scalelab"
        for kind in ("ConfigMap", "Secret"):
            cluster.delete_labelled("v1", kind, self.stack.namespace, selector)
        return outcome


class OperatorChartOps:
    """One operator's pinned Helm chart: `prepare` writes its values and the install script
    (`--dry-run` stops there), `install` runs it, `uninstall` removes the release."""

    def __init__(self, name: str, chart: Chart, values: dict[str, Any], kube: Kube, out: Path):
        self.name = name  # of the files written, and in the notes
        self.chart = chart
        self.values = values
        self.kube = kube
        self.out = out

    def prepare(self) -> Outcome:
        outcome = Outcome()
        values = _write(self.out / f"values-{self.name}.yaml", to_yaml(self.values), outcome)
        outcome.commands = [self.chart.install(values, self.kube)]
        _write(self.out / f"install-{self.name}.sh", helm.script(outcome.commands), outcome)
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
            outcome.notes.append(f"{self.chart.release}: was not installed")
        return outcome


class StrimziOps(OperatorChartOps):
    """The Strimzi operator, watching every namespace."""

    def __init__(
        self, settings: KubernetesSpec, kube: Kube, out_dir: Path, namespace: str = "strimzi"
    ):
        chart = monitoring.strimzi_chart(settings.kafka, namespace)
        super().__init__("strimzi", chart, monitoring.strimzi_values(), kube, out_dir)


def clean(cluster: Cluster, namespace: str, run_id: str | None) -> list[str]:
    """Delete one run's objects, or every scalelab run's, from a namespace; returns errors."""
    from scalelab.platform.kubernetes import teardown

    selector = labels.run_selector(run_id) if run_id else labels.RUN_ID
    return teardown.delete_selected(cluster, namespace, selector)
