"""A Flink session cluster as the Flink Kubernetes Operator's `FlinkDeployment` (`flink.mode:
operator`; `scalelab cluster flink-operator install` installs the operator).

The operator runs Flink's own entrypoint, so the pods run `platform.kubernetes.flink.image`:
a Flink distribution image (FROM flink:2.x) with scalelab's jobs jar in /opt/flink/usrlib.
`mode: standalone` keeps it a session cluster with a fixed TaskManager Deployment
(`workload.taskmanagers` replicas) and no API rights for the JobManager; the orchestrator
submits the job over REST exactly as on the run's own cluster. The Flink settings are the
local platform's (`cluster_config`: memory model, adaptive scheduler, restarts); metrics
come from Flink's own Prometheus reporter (shipped in the distribution's plugins) on the
`metrics` port, whose names match what scalelab's JMX rules produce
(`flink_taskmanager_job_task_busyTimeMsPerSecond`, ...).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from scalelab.errors import ConfigError
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, monitors
from scalelab.platform.kubernetes.manifests.flink import (
    INLINE_STATE,
    JOBMANAGER,
    METRICS_PORT,
    TASKMANAGER,
)
from scalelab.platform.local import flink as local_flink
from scalelab.spec.models import FlinkWorkload

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

API_VERSION = "flink.apache.org/v1beta1"
KIND = "FlinkDeployment"
NAME = "flink"
SERVICE_ACCOUNT = "flink"
DATA = PurePosixPath("/data/flink")
MAIN_CONTAINER = "flink-main-container"  # the operator merges the pod template into it
CPU = {JOBMANAGER: 0.25, TASKMANAGER: 0.5}


def check(plan: Plan) -> None:
    """A Flink run's settings that cannot work on the cluster."""
    if plan.settings.autoscaling.enabled:
        raise ConfigError(
            "platform.kubernetes.autoscaling scales inference workers; a Flink job is scaled "
            "by workload.schedule / strategy or the spec's autoscaler"
        )
    if plan.flink_mode == "operator" and not plan.settings.flink.image:
        raise ConfigError(
            "platform.kubernetes.flink.image: the Flink Kubernetes Operator runs Flink's own "
            "entrypoint, so it needs a Flink distribution image (FROM flink:2.x) with "
            "scalelab-flink-jobs.jar in /opt/flink/usrlib; or set flink.mode: scalelab"
        )


def flink_configuration(workload: FlinkWorkload) -> dict[str, str]:
    """The local platform's cluster settings; metrics through Flink's Prometheus reporter."""
    settings = local_flink.cluster_config(workload, DATA)
    settings.pop("metrics.reporter.jmx.factory.class", None)
    return {
        **settings,
        "state.storage.fs.memory-threshold": INLINE_STATE,
        "metrics.reporter.prom.factory.class": (
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
        ),
        "metrics.reporter.prom.port": str(METRICS_PORT),
    }


def _pod_template(plan: Plan, role: str) -> Manifest:
    meta = labels.metadata(role, plan.run_id, None, role)
    return {
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
        "spec": {
            "containers": [
                {
                    "name": MAIN_CONTAINER,
                    "ports": [
                        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": str(DATA.parent)}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def _resource(workload: FlinkWorkload, role: str) -> Manifest:
    return {"cpu": CPU[role], "memory": f"{local_flink.process_memory_mb(workload, role)}m"}


def flink_deployment(plan: Plan, workload: FlinkWorkload) -> Manifest:
    settings = plan.settings
    assert settings.flink.image is not None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": labels.metadata(NAME, plan.run_id, plan.namespace, JOBMANAGER),
        "spec": {
            "image": settings.flink.image,
            "imagePullPolicy": settings.image_pull_policy,
            "flinkVersion": settings.flink.flink_version,
            "mode": "standalone",
            "serviceAccount": SERVICE_ACCOUNT,
            "flinkConfiguration": flink_configuration(workload),
            "jobManager": {
                "replicas": 1,
                "resource": _resource(workload, JOBMANAGER),
                "podTemplate": _pod_template(plan, JOBMANAGER),
            },
            "taskManager": {
                "replicas": workload.taskmanagers,
                "resource": _resource(workload, TASKMANAGER),
                "podTemplate": _pod_template(plan, TASKMANAGER),
            },
        },
    }


def service_account(plan: Plan) -> Manifest:
    """Flink's pods run as this account; standalone mode gives it no API rights."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": labels.metadata(SERVICE_ACCOUNT, plan.run_id, plan.namespace),
        "automountServiceAccountToken": False,
    }


def flink_objects(plan: Plan, workload: FlinkWorkload) -> list[Manifest]:
    """The account, the FlinkDeployment and, for a cluster's prometheus-operator, a
    PodMonitor per role (the plan drops them when the run brings its own Prometheus)."""
    interval = monitors.scrape_interval(plan.spec.monitoring.scrape_interval)
    pod_monitors = [
        monitors.pod_monitor(
            f"flink-{role}",
            plan.run_id,
            plan.namespace,
            labels.selector_labels(plan.run_id, role),
            "metrics",
            interval,
        )
        for role in (JOBMANAGER, TASKMANAGER)
    ]
    return [service_account(plan), flink_deployment(plan, workload), *pod_monitors]
