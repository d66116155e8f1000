"""The scalelab components as pods: workers and tracker as Deployments, the producer as a Job.

Each container runs `podwrap` around the component module with the same
arguments the local platform gives the process; only paths and the bootstrap
address are the pod's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, base, monitors
from scalelab.platform.kubernetes.manifests.placement import affinity

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

PODWRAP = ["python", "-m", "scalelab.platform.kubernetes.podwrap", "--data", base.DATA_DIR, "--"]


@dataclass(frozen=True)
class Role:
    component: str
    module: str
    object_name: str
    grace_seconds: int


ROLES = {
    "tracker": Role("tracker", "scalelab.components.tracker", labels.TRACKER, 120),
    "worker": Role("worker", "scalelab.components.worker", labels.WORKERS, 60),
    "producer": Role("producer", "scalelab.components.producer", labels.PRODUCER, 60),
}


SENSORS = "scalelab.components.sensors"


def role_module(plan: Plan, role: Role) -> str:
    """The module a role runs: Flink's join reads sensor records, which its producer writes
    (components/sensors.py), as on the local platform."""
    wl = plan.flink
    if role.component == "producer" and wl is not None and wl.job == "join":
        return SENSORS
    return role.module


def component_args(plan: Plan, role: Role, extra: list[str]) -> list[str]:
    """The component's command line inside the pod (after podwrap)."""
    return [
        "python", "-m", role_module(plan, role),
        "--spec", f"{base.SPEC_DIR}/spec.yaml",
        "--bootstrap", plan.cluster_bootstrap,
        "--run-id", plan.run_id,
        "--run-dir", base.DATA_DIR,
        "--metrics-port", str(base.METRICS_PORT),
        *extra,
    ]  # fmt: skip


def default_extra(plan: Plan, role: Role) -> list[str]:
    """Role arguments: a worker is named after its pod and reads the model inside the pod."""
    if role.component == "worker":
        return ["--name", "$(POD_NAME)", "--model", plan.model_path]
    return []


def container(plan: Plan, role: Role, extra: list[str], env: dict[str, str]) -> Manifest:
    resources = getattr(plan.settings.resources, role.component)
    _, mounts = base.volumes(plan)
    probe = {
        "httpGet": {"path": "/metrics", "port": "metrics"},
        "periodSeconds": 2,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    return {
        "name": role.component,
        "image": plan.settings.image,
        "imagePullPolicy": plan.settings.image_pull_policy,
        "command": PODWRAP,
        "args": component_args(plan, role, extra),
        "env": base.environment(env),
        "ports": [{"name": "metrics", "containerPort": base.METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "resources": base.resources(resources),
        "securityContext": base.container_security(),
        "volumeMounts": mounts,
    }


def pod_template(plan: Plan, role: Role, extra: list[str], env: dict[str, str]) -> Manifest:
    vols, _ = base.volumes(plan)
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": base.pod_security(),
        "terminationGracePeriodSeconds": role.grace_seconds,
        "containers": [container(plan, role, extra, env)],
        "volumes": vols,
    }
    placed = affinity(plan.settings.node_roles, role.component)
    if placed:
        spec["affinity"] = placed
    if plan.settings.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": plan.settings.image_pull_secret}]
    if role.component == "producer":
        spec["restartPolicy"] = "Never"
    meta = labels.metadata(role.object_name, plan.run_id, component=role.component)
    del meta["name"]
    return {"metadata": meta, "spec": spec}


def deployment(
    plan: Plan, role: Role, replicas: int, extra: list[str], env: dict[str, str]
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": labels.metadata(role.object_name, plan.run_id, plan.namespace, role.component),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": labels.selector_labels(plan.run_id, role.component)},
            "template": pod_template(plan, role, extra, env),
        },
    }


def job(plan: Plan, role: Role, extra: list[str], env: dict[str, str]) -> Manifest:
    """The producer runs once: no retries, so a failed load phase is a failed run."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": labels.metadata(role.object_name, plan.run_id, plan.namespace, role.component),
        "spec": {"backoffLimit": 0, "template": pod_template(plan, role, extra, env)},
    }


def service(plan: Plan, role: Role) -> Manifest:
    port = {
        "name": "metrics",
        "port": base.METRICS_PORT,
        "targetPort": "metrics",
        "protocol": "TCP",
    }
    meta = labels.metadata(role.object_name, plan.run_id, plan.namespace, role.component)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": plan.settings.service_type,
            "selector": labels.selector_labels(plan.run_id, role.component),
            "ports": [port],
        },
    }


def monitor(plan: Plan, role: Role) -> Manifest:
    """A ServiceMonitor for Deployments (they have a Service), a PodMonitor for the Job."""
    interval = monitors.scrape_interval(plan.spec.monitoring.scrape_interval)
    selector = labels.selector_labels(plan.run_id, role.component)
    if role.component == "producer":
        return monitors.pod_monitor(
            role.object_name, plan.run_id, plan.namespace, selector, "metrics", interval
        )
    return monitors.service_monitor(
        role.object_name, plan.run_id, plan.namespace, selector, "metrics", interval
    )


def autoscaler(plan: Plan) -> Manifest:
    """autoscaling/v2 HPA on the workers' CPU with stabilisation windows (metrics-server)."""
    scaling = plan.settings.autoscaling
    target = {"type": "Utilization", "averageUtilization": scaling.cpu_utilization}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": labels.metadata(labels.WORKERS, plan.run_id, plan.namespace, "worker"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": labels.WORKERS,
            },
            "minReplicas": scaling.min_replicas or plan.worker_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": int(scaling.scale_up_window)},
                "scaleDown": {"stabilizationWindowSeconds": int(scaling.scale_down_window)},
            },
        },
    }


def component_objects(
    plan: Plan, component: str, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> list[Manifest]:
    """Everything one component needs, in apply order (the workload object last but the HPA)."""
    role = ROLES[component]
    args = default_extra(plan, role) if extra is None else extra
    env = env or {}
    if component == "producer":
        return [monitor(plan, role), job(plan, role, args, env)]
    replicas = plan.worker_replicas if component == "worker" else 1
    objects = [
        service(plan, role),
        monitor(plan, role),
        deployment(plan, role, replicas, args, env),
    ]
    if component == "worker" and plan.settings.autoscaling.enabled:
        objects.append(autoscaler(plan))
    return objects
