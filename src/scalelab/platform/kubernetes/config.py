"""Kubernetes settings of a spec (`platform.kubernetes`): image, resources, placement, pins.

Every field has a default, so a spec that only says `platform: {kind: kubernetes}`
runs; `kubernetes_settings(spec)` reads the section or falls back to those
defaults.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from scalelab import __version__
from scalelab.spec.types import Seconds

if TYPE_CHECKING:  # models.py imports this module to hang KubernetesSpec under `platform`
    from scalelab.spec.models import ExperimentSpec

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _quantity(value: str | None) -> str | None:
    if value is not None and not _QUANTITY.match(value):
        raise ValueError(f"not a Kubernetes quantity (e.g. '500m', '2', '1Gi'): {value!r}")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"not a DNS label (lowercase letters, digits, '-'): {value!r}")
    return value


class Section(BaseModel):
    """Same strictness as the spec's sections (kept here so models.py can import this module)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Quantity = Annotated[str | None, AfterValidator(_quantity)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]


class Amounts(Section):
    cpu: Quantity = Field(None, description="CPU, e.g. '500m' or '2'; unset leaves it out.")
    memory: Quantity = Field(None, description="Memory, e.g. '512Mi' or '2Gi'; unset: left out.")


class Resources(Section):
    requests: Amounts = Field(default_factory=Amounts, description="What the scheduler reserves.")
    limits: Amounts = Field(default_factory=Amounts, description="The most the container may use.")


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> Resources:
    return Resources(
        requests=Amounts(cpu=cpu, memory=memory), limits=Amounts(cpu=cpu_limit, memory=memory_limit)
    )


class ComponentResources(Section):
    worker: Resources = Field(
        default_factory=lambda: _resources("1", "1Gi", "1", "2Gi"),
        description="Each inference worker pod (set cpu to workload.threads for no throttling).",
    )
    producer: Resources = Field(
        default_factory=lambda: _resources("500m", "512Mi", "2", "2Gi"),
        description="The load generator pod.",
    )
    tracker: Resources = Field(
        default_factory=lambda: _resources("250m", "256Mi", "1", "1Gi"),
        description="The QoS tracker pod.",
    )
    kafka: Resources = Field(
        default_factory=lambda: _resources("500m", "1Gi", "2", "2Gi"),
        description="Each Kafka node when scalelab deploys Kafka.",
    )
    prometheus: Resources = Field(
        default_factory=lambda: _resources("100m", "256Mi", "1", "1Gi"),
        description="The run's own Prometheus (monitoring.mode scalelab).",
    )


class NodeRoles(Section):
    """Keep load generation off the nodes of the system under test."""

    producer_nodes: list[str] = Field(
        default_factory=list, description="Nodes labelled producer, by name."
    )
    consumer_nodes: list[str] = Field(
        default_factory=list,
        description="Nodes labelled consumer, by name; default: every other schedulable node.",
    )
    producer_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Instead of names: this fraction of the schedulable nodes (at least one) "
        "becomes producer nodes, the rest consumer nodes.",
    )
    label: str = Field("scalelab.io/role", description="Node label key holding the role.")

    @property
    def enabled(self) -> bool:
        return bool(self.producer_nodes) or self.producer_fraction is not None

    @model_validator(mode="after")
    def _names_or_fraction(self) -> Self:
        if self.producer_fraction is not None and (self.producer_nodes or self.consumer_nodes):
            raise ValueError("give node names or producer_fraction, not both")
        if self.consumer_nodes and not self.producer_nodes:
            raise ValueError("consumer_nodes needs producer_nodes")
        if set(self.producer_nodes) & set(self.consumer_nodes):
            raise ValueError("a node cannot be both producer and consumer")
        return self


class Autoscaling(Section):
    """A HorizontalPodAutoscaler on the workers' CPU (needs metrics-server)."""

    enabled: bool = Field(False, description="Scale the workers on CPU utilisation.")
    min_replicas: int | None = Field(
        None, ge=1, description="Fewest workers; default: workload.workers."
    )
    max_replicas: int = Field(8, ge=1, le=1000, description="Most workers.")
    cpu_utilization: int = Field(
        70, ge=1, le=1000, description="Target average CPU, percent of the request."
    )
    scale_up_window: Annotated[float, Field(ge=0, le=3600)] = Field(
        0, description="Scale-up stabilisation window in seconds."
    )
    scale_down_window: Annotated[float, Field(ge=0, le=3600)] = Field(
        300, description="Scale-down stabilisation window in seconds."
    )


class KafkaCluster(Section):
    """The Kafka scalelab deploys when the spec has no `broker.bootstrap`."""

    mode: Literal["auto", "scalelab", "strimzi"] = Field(
        "auto",
        description="scalelab: the run's own KRaft StatefulSet from the component image; "
        "strimzi: a Strimzi Kafka (the operator must be installed); auto: strimzi when the "
        "cluster has Strimzi's resources, else scalelab.",
    )
    strimzi_version: str = Field("0.47.0", description="Strimzi operator release (helm chart).")
    kafka_version: str = Field("4.0.0", description="Kafka version Strimzi runs.")
    metadata_version: str = Field("4.0-IV3", description="KRaft metadata version.")
    replicas: int = Field(1, ge=1, le=64, description="Kafka nodes (combined broker+controller).")
    storage_size: str = Field("10Gi", description="Volume size when storage_class is set.")
    client_port: int = Field(
        29092,
        ge=1024,
        le=65000,
        description="First local port of the client's port-forward; broker i uses client_port+i.",
    )
    client_bootstrap: str | None = Field(
        None,
        description="With broker.bootstrap (an existing cluster): the address scalelab itself "
        "uses to reach it; default: broker.bootstrap.",
    )


class MonitoringStack(Section):
    """Which Prometheus scrapes the run: its own, or the cluster's kube-prometheus-stack."""

    mode: Literal["auto", "scalelab", "kube-prometheus-stack"] = Field(
        "auto",
        description="scalelab: the run's own Prometheus (Kubernetes discovery in the run's "
        "namespace, the kubelet's cAdvisor and resource metrics); kube-prometheus-stack: the "
        "cluster's, through PodMonitors/ServiceMonitors; auto: kube-prometheus-stack when the "
        "cluster has prometheus-operator's resources, else scalelab.",
    )
    prometheus_image: str | None = Field(
        None,
        description="Image of the run's own Prometheus (needs Kubernetes discovery), e.g. "
        "quay.io/prometheus/prometheus:v3.9.1; default: the component image's "
        "/opt/scalelab/bin/prometheus.",
    )
    retention: str = Field("1d", description="TSDB retention of the run's own Prometheus.")
    namespace: DnsLabel = Field("monitoring", description="Namespace of kube-prometheus-stack.")
    release: DnsLabel = Field("scalelab-monitoring", description="Helm release name.")
    kube_prometheus_stack_version: str = Field("67.8.0", description="Pinned chart version.")
    kepler_namespace: DnsLabel = Field("kepler", description="Namespace of Kepler.")
    kepler_chart_version: str = Field(
        "0.11.1", description="Pinned Kepler chart version (never a floating 'latest')."
    )
    grafana_secret: str | None = Field(
        None,
        description="Existing Secret with keys admin-user and admin-password for Grafana; "
        "default: scalelab generates one.",
    )


class FlinkCluster(Section):
    """Where a `workload: {kind: flink}` runs on the cluster."""

    mode: Literal["auto", "scalelab", "operator"] = Field(
        "auto",
        description="scalelab: the run's own JobManager/TaskManager Deployments from the "
        "component image; operator: a FlinkDeployment for the Flink Kubernetes Operator "
        "(needs `image`); auto: operator when the cluster has its CRD and `image` is set.",
    )
    image: str | None = Field(
        None,
        description="Operator mode: a Flink distribution image (FROM flink:2.x) holding "
        "scalelab-flink-jobs.jar in /opt/flink/usrlib; the operator runs Flink's entrypoint.",
    )
    flink_version: str = Field("v2_0", description="FlinkDeployment spec.flinkVersion.")
    operator_version: str = Field(
        "1.13.0", description="Flink Kubernetes Operator release (helm chart)."
    )
    operator_namespace: DnsLabel = Field(
        "flink-operator", description="Namespace of the Flink Kubernetes Operator."
    )


class KubernetesSpec(Section):
    image: str = Field(
        f"scalelab.local/scalelab:{__version__}",
        description="Component image: `make image` builds it as a tarball (load it into the "
        "nodes' containerd, or push it to a registry with skopeo).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="When nodes pull the image."
    )
    image_pull_secret: str | None = Field(None, description="Secret for a private registry.")
    model_path: str | None = Field(
        None,
        description="Model file inside the pods; default: /opt/scalelab/models/<workload.model>"
        ".onnx (baked into the image for built-in models, or under model_pvc).",
    )
    model_pvc: str | None = Field(
        None, description="PersistentVolumeClaim mounted read-only at /models holding the model."
    )
    resources: ComponentResources = Field(
        default_factory=ComponentResources, description="Requests and limits per component."
    )
    node_roles: NodeRoles = Field(default_factory=NodeRoles, description="Producer/consumer nodes.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Worker HPA.")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Type of the metrics Services; ClusterIP exposes nothing."
    )
    storage_class: str | None = Field(
        None, description="StorageClass of Kafka's volumes; unset: ephemeral (emptyDir)."
    )
    kafka: KafkaCluster = Field(default_factory=KafkaCluster, description="Strimzi Kafka.")
    monitoring: MonitoringStack = Field(
        default_factory=MonitoringStack, description="kube-prometheus-stack and Kepler."
    )
    flink: FlinkCluster = Field(
        default_factory=FlinkCluster, description="Flink workloads: own Deployments or operator."
    )
    kepler_version: str = Field(
        "0.11", description="Kepler version the cluster runs (selects its metric names)."
    )
    chaos: Literal["auto", "chaos-mesh", "kubernetes"] = Field(
        "auto",
        description="How the spec's chaos faults are injected: chaos-mesh: as Chaos Mesh "
        "objects (PodChaos, NetworkChaos, StressChaos; Chaos Mesh must be installed); "
        "kubernetes: only what the API does itself (exec in a pod: pause a worker, restart "
        "the broker's container; other faults are refused); auto: chaos-mesh when the "
        "cluster has its resources, else kubernetes.",
    )
    create_namespace: bool = Field(
        True, description="Create platform.namespace for the run and delete it at the end."
    )
    ready_timeout: Seconds = Field(600, description="Longest wait for an object to become ready.")


def kubernetes_settings(spec: ExperimentSpec) -> KubernetesSpec:
    """The spec's `platform.kubernetes` section, or the defaults where the spec has none."""
    found = getattr(spec.platform, "kubernetes", None)
    return found if isinstance(found, KubernetesSpec) else KubernetesSpec()
