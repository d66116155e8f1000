"""What a run puts on the cluster: names, addresses and every object, grouped by stage.

`render` writes `Plan.all_objects()`; the platform applies the same groups
at the moment the core asks for them, so what a user reviews is what runs.

The modes are resolved here once: `auto` becomes `strimzi` /
`kube-prometheus-stack` when the cluster has those operators' resources, else
`scalelab` (the run brings its own Kafka and Prometheus). Offline (render)
there is no cluster to ask: `auto` renders the self-contained mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scalelab.errors import ConfigError
from scalelab.models.registry import BUILDERS
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.config import KubernetesSpec, kubernetes_settings
from scalelab.platform.kubernetes.hpa import starting_workers, with_autoscaler
from scalelab.platform.kubernetes.manifests import (
    Manifest,
    base,
    components,
    flink,
    flink_operator,
    kafka,
    monitors,
    own_kafka,
    own_prometheus,
)
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec, FlinkWorkload, YoloWorkload

IMAGE_MODELS = "/opt/scalelab/models"
COMPONENTS = ("tracker", "worker", "producer")
STRIMZI = "kafka.strimzi.io/v1beta2"
FLINK_COMPONENTS = ("tracker", "producer")  # the Flink job stands where the workers would
HasKind = Callable[[str, str], bool]


@dataclass(frozen=True)
class Plan:
    spec: ExperimentSpec
    run_id: str
    settings: KubernetesSpec = field(default_factory=KubernetesSpec)
    kafka_mode: str = "scalelab"
    monitoring_mode: str = "scalelab"
    client_port: int = 29092
    flink_mode: str = "scalelab"

    @classmethod
    def for_spec(
        cls,
        spec: ExperimentSpec,
        run_id: str,
        has_kind: HasKind | None = None,
        client_port: int | None = None,
    ) -> Plan:
        """The plan with its modes resolved (`has_kind` asks the cluster; None: offline)."""
        settings = with_autoscaler(kubernetes_settings(spec), spec)  # `autoscaler: hpa`
        ask = has_kind or (lambda api_version, kind: False)
        kafka_mode = settings.kafka.mode
        if kafka_mode == "auto":
            kafka_mode = "strimzi" if ask(STRIMZI, "Kafka") else "scalelab"
        monitoring_mode = settings.monitoring.mode
        if monitoring_mode == "auto":
            found = ask(monitors.API_VERSION, "PodMonitor")
            monitoring_mode = "kube-prometheus-stack" if found else "scalelab"
        port = settings.kafka.client_port if client_port is None else client_port
        flink_mode = settings.flink.mode
        if flink_mode == "auto":
            found = settings.flink.image is not None and ask(
                flink_operator.API_VERSION, flink_operator.KIND
            )
            flink_mode = "operator" if found else "scalelab"
        plan = cls(spec, run_id, settings, kafka_mode, monitoring_mode, port, flink_mode)
        plan.check()
        return plan

    # -- names and addresses ----------------------------------------------------------
    @property
    def namespace(self) -> str:
        return self.spec.platform.namespace

    @property
    def run_label(self) -> str:
        return labels.run_label_value(self.run_id)

    @property
    def managed_kafka(self) -> bool:
        """scalelab deploys Kafka unless the spec points at an existing cluster."""
        return self.spec.broker.bootstrap is None

    @property
    def own_kafka(self) -> bool:
        """The run's own KRaft StatefulSet (no Strimzi)."""
        return self.managed_kafka and self.kafka_mode == "scalelab"

    @property
    def own_monitoring(self) -> bool:
        """The run's own Prometheus (no kube-prometheus-stack)."""
        return self.monitoring_mode == "scalelab"

    @property
    def cluster_bootstrap(self) -> str:
        """The bootstrap address pods use."""
        if self.spec.broker.bootstrap:
            return self.spec.broker.bootstrap
        if self.own_kafka:
            return own_kafka.bootstrap_address(self.namespace)
        return kafka.bootstrap_address(self.namespace)

    @property
    def client_bootstrap(self) -> str:
        """The bootstrap address scalelab itself uses (through port-forwards when it deploys)."""
        if self.managed_kafka:
            return f"127.0.0.1:{self.client_port}"
        return self.settings.kafka.client_bootstrap or self.cluster_bootstrap

    @property
    def worker_replicas(self) -> int:
        if self.flink is not None:
            return 0  # no inference workers: the Flink job processes the frames
        start = starting_workers(self.spec, self.workload.workers)
        if start is not None:
            return start
        scaling = self.settings.autoscaling
        if scaling.enabled and scaling.min_replicas is not None:
            return scaling.min_replicas
        return self.workload.workers

    @property
    def model_path(self) -> str:
        """The model file as the worker pods see it."""
        if self.settings.model_path:
            return self.settings.model_path
        model = self.workload.model
        if self.settings.model_pvc:
            return f"{base.MODELS_DIR}/{Path(model).name}"
        return f"{IMAGE_MODELS}/{model}.onnx"

    @property
    def workload(self) -> YoloWorkload:
        """The inference workload (a Flink run has none: see `flink`)."""
        if not isinstance(self.spec.workload, YoloWorkload):
            raise ConfigError(f"workload.kind {self.spec.workload.kind!r} has no inference workers")
        return self.spec.workload

    @property
    def flink(self) -> FlinkWorkload | None:
        """The Flink workload, or None for an inference run."""
        wl = self.spec.workload
        return wl if isinstance(wl, FlinkWorkload) else None

    @property
    def components(self) -> tuple[str, ...]:
        """scalelab's own components of this run, in the order `all_objects` renders them."""
        return FLINK_COMPONENTS if self.flink is not None else COMPONENTS

    @property
    def resolved_spec(self) -> str:
        return dump_spec(self.spec)

    # -- checks -------------------------------------------------------------------------
    def check(self) -> None:
        """Settings that cannot work on a cluster fail here, before anything is applied."""
        if self.flink is not None:
            flink_operator.check(self)
        else:
            self._check_model()
        if self.own_kafka and self.settings.kafka.replicas != 1:
            raise ConfigError(
                "kafka.replicas: the run's own Kafka (kafka.mode scalelab) has one node; "
                "use kafka.mode strimzi for more"
            )
        self._check_autoscaling()

    def _check_model(self) -> None:
        model = self.workload.model
        if model not in BUILDERS and not (self.settings.model_path or self.settings.model_pvc):
            raise ConfigError(
                f"workload.model {model!r} is a file on this machine: pods cannot read it; set "
                "platform.kubernetes.model_path (a path baked into the image) or model_pvc"
            )

    def _check_autoscaling(self) -> None:
        scaling = self.settings.autoscaling
        if scaling.enabled and not self.settings.resources.worker.requests.cpu:
            raise ConfigError("autoscaling on CPU needs resources.worker.requests.cpu")
        if scaling.enabled and scaling.max_replicas < self.worker_replicas:
            raise ConfigError(
                f"autoscaling.max_replicas ({scaling.max_replicas}) is below the "
                f"minimum of {self.worker_replicas} workers"
            )

    # -- objects by stage ---------------------------------------------------------------
    def base_objects(self) -> list[Manifest]:
        first = [base.namespace(self)] if self.settings.create_namespace else []
        return [*first, base.spec_configmap(self)]

    def monitoring_objects(self) -> list[Manifest]:
        return own_prometheus.monitoring_objects(self) if self.own_monitoring else []

    def kafka_objects(self) -> list[Manifest]:
        if not self.managed_kafka:
            return []
        if self.own_kafka:
            return own_kafka.kafka_objects(self, self.client_port)
        return self._monitored(kafka.kafka_objects(self))

    def flink_objects(self) -> list[Manifest]:
        """The Flink session cluster of a Flink run: the run's own Deployments, or a
        FlinkDeployment for the Flink Kubernetes Operator."""
        if self.flink is None:
            return []
        if self.flink_mode == "operator":
            return self._monitored(flink_operator.flink_objects(self, self.flink))
        return flink.flink_objects(self, self.flink)

    def component_objects(
        self, component: str, extra: list[str] | None = None, env: dict[str, str] | None = None
    ) -> list[Manifest]:
        return self._monitored(components.component_objects(self, component, extra, env))

    def _monitored(self, objects: list[Manifest]) -> list[Manifest]:
        """PodMonitors/ServiceMonitors only for the cluster's prometheus-operator."""
        if not self.own_monitoring:
            return objects
        return [obj for obj in objects if obj["apiVersion"] != monitors.API_VERSION]

    def all_objects(self) -> list[Manifest]:
        objects = self.base_objects() + self.monitoring_objects() + self.kafka_objects()
        objects += self.flink_objects()
        for component in self.components:
            objects += self.component_objects(component)
        return objects


# -- a ComponentLaunch from the core, as a pod runs it ----------------------------------------
# The core gives every component the same arguments on every platform. Paths and the
# bootstrap address are this machine's; the pod has its own (the spec ConfigMap, /data, the
# in-cluster bootstrap, the model inside the pod), which `components.component_args` fills
# in. What remains are the role arguments, rewritten where they name something local.
PLATFORM_OPTIONS = {
    "--spec",
    "--bootstrap",
    "--run-id",
    "--run-dir",
    "--base-dir",
    "--metrics-port",
}


def component_of(launch: ComponentLaunch) -> str:
    if launch.role not in COMPONENTS:
        raise ConfigError(
            f"component {launch.name}: role {launch.role!r} has no Kubernetes "
            f"object (known: {', '.join(COMPONENTS)})"
        )
    return launch.role


def role_args(plan: Plan, launch: ComponentLaunch) -> list[str]:
    """The launch's role arguments with local names replaced by the pod's."""
    out: list[str] = []
    args = list(launch.args)
    while args:
        option = args.pop(0)
        value = args.pop(0) if args and not args[0].startswith("--") else None
        if option in PLATFORM_OPTIONS:
            continue
        if option == "--name" and launch.role == "worker":
            value = "$(POD_NAME)"  # one Deployment: each replica is named after its pod
        elif option == "--model":
            value = plan.model_path
        out += [option] if value is None else [option, value]
    return out
