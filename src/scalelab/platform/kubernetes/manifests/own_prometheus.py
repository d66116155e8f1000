"""The run's own Prometheus (`monitoring.mode: scalelab`): discovery scoped to the run.

It scrapes, every `monitoring.scrape_interval`:

- `pods`: the run's pods with a container port named `metrics` (the
  components, the broker's JMX exporter), labelled `run_id`, `component`,
  `instance` (the pod) and `node`, as the PodMonitors label them;
- `kubelet-cadvisor` and `kubelet-resource`: each node's kubelet
  (`/metrics/cadvisor`, `/metrics/resource`), kept to the run's namespace
  and a few metric families (CPU, memory, throttling, network), each series
  labelled with the component its pod belongs to. Without Kepler, energy is
  the analysis's CPU-time ESTIMATE from these per-pod counters.

RBAC is what that needs and no more: get/list/watch pods in the namespace
(a Role), get/list/watch nodes and get nodes/metrics (a ClusterRole, named
after the run and deleted with it). The kubelet's serving certificate is
usually self-signed, so its TLS is not verified; the bearer token is.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.manifests import Manifest, base
from scalelab.platform.kubernetes.manifests.monitors import scrape_interval

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.plan import Plan

NAME = "prometheus"
PORT = 9090
BINARY = "/opt/scalelab/bin/prometheus"
CONFIG_DIR = "/etc/prometheus"
DATA = "/prometheus"
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
CADVISOR_KEEP = (
    "container_cpu_usage_seconds_total|container_memory_working_set_bytes|"
    "container_cpu_cfs_throttled_seconds_total|container_cpu_cfs_periods_total|"
    "container_cpu_cfs_throttled_periods_total|"
    "container_network_receive_bytes_total|container_network_transmit_bytes_total"
)
RESOURCE_KEEP = "node_cpu_usage_seconds_total|node_memory_working_set_bytes|pod_.*"
# Pod name -> component, from the object names scalelab gives its workloads.
POD_COMPONENTS = (
    ("workers-.+", "worker"),
    ("tracker-.+", "tracker"),
    ("producer-.+", "producer"),
    ("kafka-[0-9]+", "kafka"),
    ("prometheus-.+", "prometheus"),
    ("jobmanager-.+", "jobmanager"),
    ("taskmanager-.+", "taskmanager"),
)


def cluster_role_name(plan: Plan) -> str:
    """Cluster-scoped: one per run, so two runs never share (or delete) each other's."""
    return f"scalelab-prometheus-{plan.run_label}"[:253].lower()


def _meta_label(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _pod_job(plan: Plan, interval: str) -> dict[str, Any]:
    pairs = (
        (f"__meta_kubernetes_pod_annotation_{_meta_label(labels.RUN_ID_ANNOTATION)}", "run_id"),
        (f"__meta_kubernetes_pod_label_{_meta_label(labels.COMPONENT)}", "component"),
        ("__meta_kubernetes_pod_name", "instance"),
        ("__meta_kubernetes_pod_node_name", "node"),
    )
    run_label = f"__meta_kubernetes_pod_label_{_meta_label(labels.RUN_ID)}"
    return {
        "job_name": "pods",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [plan.namespace]}}],
        "relabel_configs": [
            {"source_labels": [run_label], "regex": plan.run_label, "action": "keep"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "metrics|tcp-prometheus",  # components and our broker; Strimzi's
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "Running",
                "action": "keep",
            },
            *({"source_labels": [s], "target_label": t} for s, t in pairs),
        ],
    }


def _kubelet_job(plan: Plan, interval: str, path: str, keep: str) -> dict[str, Any]:
    components = [
        {"source_labels": ["pod"], "regex": regex, "target_label": "component", "replacement": c}
        for regex, c in POD_COMPONENTS
    ]
    return {
        "job_name": f"kubelet-{path.rsplit('/', 1)[-1]}",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "scheme": "https",
        "metrics_path": path,
        # the kubelet stamps samples with its own (10-15 s) collection times: stored at the
        # scrape's time instead, every series has the run's scrape interval, no false gaps
        "honor_timestamps": False,
        "authorization": {"credentials_file": TOKEN},
        "tls_config": {"insecure_skip_verify": True},
        "kubernetes_sd_configs": [{"role": "node"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"},
            {"target_label": "run_id", "replacement": plan.run_id},
        ],
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": keep, "action": "keep"},
            # the run's namespace, or none (node-wide series)
            {"source_labels": ["namespace"], "regex": f"({plan.namespace})?", "action": "keep"},
            *components,
        ],
    }


def config(plan: Plan) -> str:
    interval = scrape_interval(plan.spec.monitoring.scrape_interval)
    document = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            _pod_job(plan, interval),
            _kubelet_job(plan, interval, "/metrics/cadvisor", CADVISOR_KEEP),
            _kubelet_job(plan, interval, "/metrics/resource", RESOURCE_KEEP),
        ],
    }
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(document, out)
    return out.getvalue()


def _meta(plan: Plan, name: str = NAME, namespaced: bool = True) -> dict[str, object]:
    return labels.metadata(name, plan.run_id, plan.namespace if namespaced else None, NAME)


def rbac(plan: Plan) -> list[Manifest]:
    watch = ["get", "list", "watch"]
    subject = {"kind": "ServiceAccount", "name": NAME, "namespace": plan.namespace}
    cluster_name = cluster_role_name(plan)
    rbac_api = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(plan)},
        {
            "apiVersion": rbac_api,
            "kind": "Role",
            "metadata": _meta(plan),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": watch}],
        },
        {
            "apiVersion": rbac_api,
            "kind": "RoleBinding",
            "metadata": _meta(plan),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [subject],
        },
        {
            "apiVersion": rbac_api,
            "kind": "ClusterRole",
            "metadata": _meta(plan, cluster_name, namespaced=False),
            "rules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": watch},
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": rbac_api,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(plan, cluster_name, namespaced=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_name,
            },
            "subjects": [subject],
        },
    ]


def configmap(plan: Plan) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(plan),
        "data": {"prometheus.yml": config(plan)},
    }


def _container(plan: Plan) -> Manifest:
    stack = plan.settings.monitoring
    image = stack.prometheus_image or plan.settings.image
    args = [
        f"--config.file={CONFIG_DIR}/prometheus.yml",
        f"--storage.tsdb.path={DATA}",
        f"--storage.tsdb.retention.time={stack.retention}",
        f"--web.listen-address=0.0.0.0:{PORT}",
    ]
    container: Manifest = {
        "name": NAME,
        "image": image,
        "imagePullPolicy": plan.settings.image_pull_policy,
        "args": args,
        "ports": [{"name": "web", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/-/ready", "port": "web"},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": base.resources(plan.settings.resources.prometheus),
        "securityContext": base.container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA},
        ],
    }
    if stack.prometheus_image is None:
        container["command"] = [BINARY]
    return container


def deployment(plan: Plan) -> Manifest:
    meta = _meta(plan)
    selector = labels.selector_labels(plan.run_id, NAME)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
                "spec": {
                    "serviceAccountName": NAME,
                    "enableServiceLinks": False,
                    "securityContext": base.pod_security(),
                    "containers": [_container(plan)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def monitoring_objects(plan: Plan) -> list[Manifest]:
    """In apply order: RBAC, configuration, the server (waited for until ready)."""
    return [*rbac(plan), configmap(plan), deployment(plan)]
