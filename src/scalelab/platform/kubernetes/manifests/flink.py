"""The run's own Flink session cluster (`flink.mode: scalelab`): Deployments from the image.

No operator and no flink-dist: the component image carries the pinned Flink jars and
scalelab's jobs jar (`/opt/scalelab/flink/lib`), Java 17 and the JMX exporter agent
(`/opt/scalelab/kafka/lib`). The JobManager and the TaskManagers run `java` exactly as the
local platform starts them (`platform/local/flink.py`: the same memory model, JVM flags,
scheduler and restart settings), with cluster addresses instead of loopback:

- `jobmanager` Deployment (one replica) behind the `jobmanager` Service: REST 8081 (the
  orchestrator's port-forward), RPC 6123 and blob 6124 (the TaskManagers);
- `taskmanager` Deployment: `workload.taskmanagers` replicas, `slots_per_taskmanager` slots
  each, each registering with its pod IP;
- `flink-config` ConfigMap: `config.yaml`, `log4j.properties` and the JMX rules.

Metrics: Flink's JMX reporter read by the exporter agent on port 9249 (`metrics`), which
the run's Prometheus (or a PodMonitor) scrapes like the broker's. Checkpoints and
savepoints live on each pod's emptyDir; state is inlined into the checkpoint metadata
the JobManager keeps (up to `state.storage.fs.memory-threshold`), so no shared volume is
needed for scalelab's jobs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, base, placement
from scalelab.platform.local import flink as local_flink
from scalelab.spec.models import FlinkWorkload

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

JOBMANAGER = "jobmanager"
TASKMANAGER = "taskmanager"
CONFIGMAP = "flink-config"
REST_PORT = 8081
RPC_PORT = 6123
BLOB_PORT = 6124
TM_RPC_PORT = 6122
TM_DATA_PORT = 6121
METRICS_PORT = 9249
LIB = "/opt/scalelab/flink/lib"
AGENT_LIB = "/opt/scalelab/kafka/lib"
CONFIG_DIR = "/etc/flink"
DATA = PurePosixPath("/data/flink")
# State up to this size travels inside the checkpoint's metadata (the JobManager's), so a
# TaskManager's emptyDir never holds what a restore needs (Flink's maximum: 1 MiB).
INLINE_STATE = "1mb"
CPU_REQUEST = {JOBMANAGER: "100m", TASKMANAGER: "250m"}


def rpc_address(namespace: str) -> str:
    return f"{JOBMANAGER}.{namespace}.svc"


def network_config(namespace: str) -> dict[str, str]:
    """Fixed ports, bound on every interface of the pod; the JobManager by its Service."""
    return {
        "jobmanager.rpc.address": rpc_address(namespace),
        "jobmanager.rpc.port": str(RPC_PORT),
        "jobmanager.bind-host": "0.0.0.0",
        "rest.address": rpc_address(namespace),
        "rest.bind-address": "0.0.0.0",
        "rest.port": str(REST_PORT),
        "blob.server.port": str(BLOB_PORT),
        "taskmanager.bind-host": "0.0.0.0",
        "taskmanager.rpc.port": str(TM_RPC_PORT),
        "taskmanager.data.port": str(TM_DATA_PORT),
        "metrics.internal.query-service.port": "0",
    }


def flink_settings(namespace: str, workload: FlinkWorkload) -> dict[str, str]:
    """config.yaml: the local platform's cluster settings with in-cluster addresses."""
    return {
        **network_config(namespace),
        **local_flink.cluster_config(workload, DATA),
        "state.storage.fs.memory-threshold": INLINE_STATE,
    }


def configmap(plan: Plan, workload: FlinkWorkload) -> Manifest:
    rules = resources.files("scalelab.platform.local").joinpath("flink-jmx.yaml").read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.metadata(CONFIGMAP, plan.run_id, plan.namespace, JOBMANAGER),
        "data": {
            "config.yaml": local_flink.config_yaml(flink_settings(plan.namespace, workload)),
            "log4j.properties": local_flink.LOG4J,
            "jmx.yaml": rules,
        },
    }


def command(workload: FlinkWorkload, role: str) -> str:
    """The shell line a pod runs: make the data directories, then exec `java` (the exporter
    jar's version is the image's, found at start)."""
    if role == JOBMANAGER:
        memory, main, extra = local_flink.jobmanager_memory(workload), local_flink.ENTRYPOINT, ""
    else:
        memory, main = local_flink.taskmanager_memory(workload), local_flink.TASKMANAGER
        extra = ' "-Dtaskmanager.host=$POD_IP"'  # the JobManager reaches it by its pod IP
    jvm = local_flink.jvm_options(
        f"{CONFIG_DIR}/log4j.properties", f"$AGENT={METRICS_PORT}:{CONFIG_DIR}/jmx.yaml"
    )
    flags = " ".join(f'"{flag}"' for flag in [*memory, *jvm])
    dirs = " ".join(str(DATA / d) for d in ("checkpoints", "savepoints", "tmp", "web", "blobs"))
    return "\n".join(
        [
            "set -e",
            f"mkdir -p {dirs}",
            f"AGENT=$(ls {AGENT_LIB}/jmx_prometheus_javaagent-*.jar | tail -n 1)",
            f"exec java {flags} -cp '{LIB}/*' {main} --configDir {CONFIG_DIR}{extra}",
        ]
    )


def _resources(workload: FlinkWorkload, role: str) -> Manifest:
    """Memory is Flink's whole process size (its memory model is explicit); CPU is only
    requested, so a 2-core node can hold the cluster beside Kafka and the clients."""
    memory = f"{local_flink.process_memory_mb(workload, role)}Mi"
    return {"requests": {"cpu": CPU_REQUEST[role], "memory": memory}, "limits": {"memory": memory}}


def _container(plan: Plan, workload: FlinkWorkload, role: str) -> Manifest:
    if role == JOBMANAGER:
        ports = [("rest", REST_PORT), ("rpc", RPC_PORT), ("blob", BLOB_PORT)]
        probe = "rest"
    else:
        ports = [("rpc", TM_RPC_PORT), ("data", TM_DATA_PORT)]
        probe = "data"
    ports.append(("metrics", METRICS_PORT))
    env = base.environment({})
    env.append({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    return {
        "name": role,
        "image": plan.settings.image,
        "imagePullPolicy": plan.settings.image_pull_policy,
        "command": ["/bin/sh", "-c", command(workload, role)],
        "env": env,
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
        "readinessProbe": {"tcpSocket": {"port": probe}, "periodSeconds": 2, "failureThreshold": 3},
        "resources": _resources(workload, role),
        "securityContext": base.container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": base.DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def deployment(plan: Plan, workload: FlinkWorkload, role: str) -> Manifest:
    meta = labels.metadata(role, plan.run_id, plan.namespace, role)
    pod_meta = {"labels": meta["labels"], "annotations": meta["annotations"]}
    pod_spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": base.pod_security(),
        "terminationGracePeriodSeconds": 10,
        "containers": [_container(plan, workload, role)],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIGMAP}},
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    # TaskManagers are the system under test (consumer nodes); the JobManager only avoids
    # the producer's nodes, as Kafka does.
    affinity = placement.affinity(
        plan.settings.node_roles, "worker" if role == TASKMANAGER else "kafka"
    )
    if affinity:
        pod_spec["affinity"] = affinity
    if plan.settings.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": plan.settings.image_pull_secret}]
    replicas = workload.taskmanagers if role == TASKMANAGER else 1
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels.selector_labels(plan.run_id, role)},
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }


def service(plan: Plan) -> Manifest:
    ports = (("rest", REST_PORT), ("rpc", RPC_PORT), ("blob", BLOB_PORT))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.metadata(JOBMANAGER, plan.run_id, plan.namespace, JOBMANAGER),
        "spec": {
            "selector": labels.selector_labels(plan.run_id, JOBMANAGER),
            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in ports],
        },
    }


def flink_objects(plan: Plan, workload: FlinkWorkload) -> list[Manifest]:
    """In apply order: configuration, the JobManager's Service and Deployment (waited for),
    the TaskManagers (waited for)."""
    return [
        configmap(plan, workload),
        service(plan),
        deployment(plan, workload, JOBMANAGER),
        deployment(plan, workload, TASKMANAGER),
    ]
