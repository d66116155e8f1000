"""Checks made before anything is applied: operators installed, namespace free."""

from __future__ import annotations

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.api import Cluster
from scalelab.platform.kubernetes.chaos import check_chaos
from scalelab.platform.kubernetes.errors import NamespaceBusyError, PrerequisiteError
from scalelab.platform.kubernetes.flink_operator_ops import require_operator
from scalelab.platform.kubernetes.plan import Plan

STRIMZI = "kafka.strimzi.io/v1beta2"
MONITORING = "monitoring.coreos.com/v1"
BUSY_KINDS = (("apps/v1", "Deployment"), ("batch/v1", "Job"), ("v1", "ConfigMap"))


def require_kinds(cluster: Cluster, plan: Plan) -> None:
    if plan.managed_kafka and not plan.own_kafka:
        for kind in ("Kafka", "KafkaNodePool", "KafkaTopic"):
            if not cluster.has_kind(STRIMZI, kind):
                raise PrerequisiteError(
                    f"Strimzi custom resources ({STRIMZI} {kind})",
                    "run `scalelab cluster strimzi install`, or set "
                    "broker.bootstrap to an existing Kafka",
                )
    for kind in () if plan.own_monitoring else ("PodMonitor", "ServiceMonitor"):
        if not cluster.has_kind(MONITORING, kind):
            raise PrerequisiteError(
                f"prometheus-operator custom resources ({MONITORING} {kind})",
                "run `scalelab cluster monitoring install`",
            )
    if plan.settings.autoscaling.enabled and not cluster.has_kind(
        "metrics.k8s.io/v1beta1", "PodMetrics"
    ):
        raise PrerequisiteError(
            "metrics API (metrics-server) for the autoscaler",
            "K3S ships metrics-server; elsewhere install it "
            "(https://github.com/kubernetes-sigs/metrics-server)",
        )


def other_runs(cluster: Cluster, plan: Plan) -> list[str]:
    """Run ids (label values) of other runs whose objects are still in the namespace."""
    if cluster.get("v1", "Namespace", plan.namespace) is None:
        return []
    selector = f"{labels.RUN_ID},{labels.RUN_ID}!={plan.run_label}"
    found: set[str] = set()
    for api_version, kind in BUSY_KINDS:
        for obj in cluster.list(api_version, kind, plan.namespace, selector):
            found.add(obj["metadata"]["labels"][labels.RUN_ID])
    return sorted(found)


def preflight(cluster: Cluster, plan: Plan) -> None:
    require_kinds(cluster, plan)
    require_operator(cluster, plan)  # flink.mode operator without the operator's CRD
    check_chaos(cluster, plan)  # a fault this cluster cannot inject fails here, named
    busy = other_runs(cluster, plan)
    if busy:
        raise NamespaceBusyError(plan.namespace, busy)
