"""`scalelab cluster ...`: prepare a Kubernetes cluster and reach it (the `kubernetes` extra)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from scalelab import paths
from scalelab.cli.common import console, handle_errors
from scalelab.spec.loader import load_spec

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.api import Cluster
    from scalelab.platform.kubernetes.cluster_ops import Outcome
    from scalelab.platform.kubernetes.config import KubernetesSpec
    from scalelab.platform.kubernetes.helm import Kube

app = typer.Typer(no_args_is_help=True)
monitoring_app = typer.Typer(no_args_is_help=True)
strimzi_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    monitoring_app,
    name="monitoring",
    help="kube-prometheus-stack, Kepler and scalelab's Grafana dashboards (pinned).",
)
app.add_typer(strimzi_app, name="strimzi", help="The Strimzi Kafka operator (pinned).")
flink_operator_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    flink_operator_app, name="flink-operator", help="The Flink Kubernetes Operator (pinned)."
)

SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Take kubeconfig, context and pins from this spec.")
]
KubeconfigOption = Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig path.")]
ContextOption = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Write values, dashboards and commands; run nothing.")
]
OutOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Where values and commands are written.")
]


def _target(
    spec: Path | None, kubeconfig: str | None, context: str | None
) -> tuple[KubernetesSpec, Kube]:
    from scalelab.platform.kubernetes.config import KubernetesSpec, kubernetes_settings
    from scalelab.platform.kubernetes.helm import Kube

    if spec is None:
        return KubernetesSpec(), Kube(kubeconfig, context)
    parsed = load_spec(spec)
    return kubernetes_settings(parsed), Kube(
        kubeconfig or parsed.platform.kubeconfig, context or parsed.platform.context
    )


def _cluster(kube: Kube) -> Cluster:
    from scalelab.platform.kubernetes.api import connect

    return connect(kube.kubeconfig, kube.context)


def _report(outcome: Outcome, verb: str) -> None:
    for path in outcome.written:
        console.print(f"  wrote {escape(str(path))}", highlight=False)
    for command in outcome.commands:
        console.print(f"  {verb}: {escape(' '.join(command))}", highlight=False)
    for note in outcome.notes:
        console.print(f"  {escape(note)}", highlight=False)


@monitoring_app.command("install")
@handle_errors
def monitoring_install(
    spec: SpecOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dry_run: DryRunOption = False,
    output: OutOption = None,
) -> None:
    """Install kube-prometheus-stack and Kepler with generated values, and the dashboards."""
    from scalelab.platform.kubernetes.cluster_ops import MonitoringStackOps
    from scalelab.platform.kubernetes.helm import find_helm

    settings, kube = _target(spec, kubeconfig, context)
    ops = MonitoringStackOps(settings, kube, output or paths.state_dir() / "cluster")
    if dry_run:
        _report(ops.prepare(), "would run")
        return
    find_helm()  # a missing helm is named before anything else happens
    _report(ops.install(_cluster(kube)), "ran")
    console.print("[green]installed[/green]; Grafana: `scalelab cluster port-forward grafana`")


@monitoring_app.command("uninstall")
@handle_errors
def monitoring_uninstall(
    spec: SpecOption = None, kubeconfig: KubeconfigOption = None, context: ContextOption = None
) -> None:
    """Remove Kepler, kube-prometheus-stack and scalelab's dashboards and Secret."""
    from scalelab.platform.kubernetes.cluster_ops import MonitoringStackOps
    from scalelab.platform.kubernetes.helm import find_helm

    settings, kube = _target(spec, kubeconfig, context)
    ops = MonitoringStackOps(settings, kube, paths.state_dir() / "cluster")
    find_helm()
    _report(ops.uninstall(_cluster(kube)), "ran")
    console.print("[green]uninstalled[/green] (the operator's CRDs stay, as helm leaves them)")


@strimzi_app.command("install")
@handle_errors
def strimzi_install(
    spec: SpecOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dry_run: DryRunOption = False,
    output: OutOption = None,
) -> None:
    """Install the Strimzi operator, watching every namespace."""
    from scalelab.platform.kubernetes.cluster_ops import StrimziOps

    settings, kube = _target(spec, kubeconfig, context)
    ops = StrimziOps(settings, kube, output or paths.state_dir() / "cluster")
    _report(ops.prepare() if dry_run else ops.install(), "would run" if dry_run else "ran")


@strimzi_app.command("uninstall")
@handle_errors
def strimzi_uninstall(
    spec: SpecOption = None, kubeconfig: KubeconfigOption = None, context: ContextOption = None
) -> None:
    """Remove the Strimzi operator."""
    from scalelab.platform.kubernetes.cluster_ops import StrimziOps

    settings, kube = _target(spec, kubeconfig, context)
    _report(StrimziOps(settings, kube, paths.state_dir() / "cluster").uninstall(), "ran")


@flink_operator_app.command("install")
@handle_errors
def flink_operator_install(
    spec: SpecOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dry_run: DryRunOption = False,
    output: OutOption = None,
) -> None:
    """Install the Flink Kubernetes Operator, watching every namespace (no webhook)."""
    from scalelab.platform.kubernetes.flink_operator_ops import FlinkOperatorOps

    settings, kube = _target(spec, kubeconfig, context)
    ops = FlinkOperatorOps(settings, kube, output or paths.state_dir() / "cluster")
    _report(ops.prepare() if dry_run else ops.install(), "would run" if dry_run else "ran")


@flink_operator_app.command("uninstall")
@handle_errors
def flink_operator_uninstall(
    spec: SpecOption = None, kubeconfig: KubeconfigOption = None, context: ContextOption = None
) -> None:
    """Remove the Flink Kubernetes Operator (its CRDs stay, as helm leaves them)."""
    from scalelab.platform.kubernetes.flink_operator_ops import FlinkOperatorOps

    settings, kube = _target(spec, kubeconfig, context)
    _report(FlinkOperatorOps(settings, kube, paths.state_dir() / "cluster").uninstall(), "ran")


@app.command("port-forward")
@handle_errors
def port_forward(
    target: Annotated[Literal["grafana", "prometheus"], typer.Argument(help="What to reach.")],
    port: Annotated[int, typer.Option(help="Local port (0: a free one).")] = 0,
    spec: SpecOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Reach Grafana or Prometheus on 127.0.0.1 through the Kubernetes API, until Ctrl-C."""
    from scalelab.platform.kubernetes import status as prom
    from scalelab.platform.kubernetes.api import PortForward, pod_opener

    settings, kube = _target(spec, kubeconfig, context)
    cluster = _cluster(kube)
    namespace = settings.monitoring.namespace
    selector, remote = (
        (prom.GRAFANA_PODS, prom.GRAFANA_PORT)
        if target == "grafana"
        else (prom.PROMETHEUS_PODS, prom.PROMETHEUS_PORT)
    )
    pod = prom.find_pod(cluster, namespace, selector, target)
    forward = PortForward(target, pod_opener(cluster.core, namespace, pod, remote), port)
    console.print(f"{target}: http://{forward.address}  ({namespace}/{pod}; Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        forward.close()


@app.command("clean")
@handle_errors
def clean(
    namespace: Annotated[str, typer.Option(help="Namespace of the runs.")] = "scalelab",
    run_id: Annotated[str | None, typer.Option(help="Only this run (default: every run).")] = None,
    spec: SpecOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Delete what runs left on the cluster, by their `scalelab.io/run-id` label."""
    from scalelab.platform.kubernetes.cluster_ops import clean as clean_runs

    _, kube = _target(spec, kubeconfig, context)
    errors = clean_runs(_cluster(kube), namespace, run_id)
    for error in errors:
        console.print(f"[red]error[/red] {escape(error)}")
    if errors:
        raise typer.Exit(1)
    console.print(f"[green]clean[/green] {namespace}")
