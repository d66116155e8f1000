"""The end of a run on a cluster: logs first, then every object by the run's label.

Order matters: Chaos Mesh objects first (Chaos Mesh recovers their pods),
workloads before their monitors, KafkaTopics before the
Kafka whose Topic Operator removes their finalizers, the namespace last.
"""

from __future__ import annotations

from pathlib import Path

from scalelab.errors import ScalelabError
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.api import Cluster, PodOps
from scalelab.platform.kubernetes.status import restarted

STRIMZI = "kafka.strimzi.io/v1beta2"
MONITORING = "monitoring.coreos.com/v1"
RBAC = "rbac.authorization.k8s.io/v1"
CHAOS_MESH = "chaos-mesh.org/v1alpha1"
FLINK_OPERATOR = "flink.apache.org/v1beta1"
DELETE_ORDER: tuple[tuple[tuple[str, str], ...], ...] = (
    ((CHAOS_MESH, "PodChaos"), (CHAOS_MESH, "NetworkChaos"), (CHAOS_MESH, "StressChaos")),
    ((FLINK_OPERATOR, "FlinkDeployment"),),  # the operator removes its own Deployments
    (("autoscaling/v2", "HorizontalPodAutoscaler"), ("batch/v1", "Job"), ("apps/v1", "Deployment")),
    ((MONITORING, "PodMonitor"), (MONITORING, "ServiceMonitor"), ("v1", "Service")),
    ((STRIMZI, "KafkaTopic"),),
    ((STRIMZI, "Kafka"), (STRIMZI, "KafkaNodePool"), ("apps/v1", "StatefulSet")),
    (("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount")),
    ((RBAC, "RoleBinding"), (RBAC, "Role"), (RBAC, "ClusterRoleBinding"), (RBAC, "ClusterRole")),
    (("v1", "Namespace"),),
)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
STEP_TIMEOUT_S = 300.0


def collect_logs(
    cluster: Cluster, pods: PodOps, namespace: str, run_id: str, logs_dir: Path
) -> list[Path]:
    """Every pod's log (and its previous container's after a restart) into logs/."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for pod in cluster.list("v1", "Pod", namespace, labels.run_selector(run_id)):
        name = pod["metadata"]["name"]
        for container in pod.get("spec", {}).get("containers", []):
            suffix = "" if len(pod["spec"]["containers"]) == 1 else f"-{container['name']}"
            variants = [(False, "")] + ([(True, ".previous")] if restarted(pod) else [])
            for previous, tag in variants:
                path = logs_dir / f"{name}{suffix}{tag}.log"
                path.write_text(pods.logs(name, container["name"], previous=previous))
                written.append(path)
    return written


def delete_run(
    cluster: Cluster, namespace: str, run_id: str, timeout: float = STEP_TIMEOUT_S
) -> list[str]:
    """Delete the run's objects group by group, waiting for each group; returns the errors."""
    return delete_selected(cluster, namespace, labels.run_selector(run_id), timeout)


def delete_selected(
    cluster: Cluster, namespace: str, selector: str, timeout: float = STEP_TIMEOUT_S
) -> list[str]:
    """Delete what the label selector matches, in the order a run needs."""
    errors: list[str] = []
    for group in DELETE_ORDER:
        for api_version, kind in group:
            where = None if kind in CLUSTER_SCOPED else namespace
            try:
                cluster.delete_labelled(api_version, kind, where, selector)
            except ScalelabError as error:
                errors.append(str(error))
        for api_version, kind in group:
            where = None if kind in CLUSTER_SCOPED else namespace
            try:
                cluster.wait_gone(api_version, kind, where, selector, timeout)
            except ScalelabError as error:
                errors.append(str(error))
    return errors
