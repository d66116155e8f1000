"""What a run puts on the cluster: names, addresses and every object, grouped by stage.

`render` writes `Plan.all_objects()`; the platform applies the same groups
at the moment the core asks for them, so what a user reviews is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scalelab.errors import ConfigError
from scalelab.models.registry import BUILDERS
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.config import KubernetesSpec, kubernetes_settings
from scalelab.platform.kubernetes.manifests import Manifest, base, components, kafka
from scalelab.spec.loader import dump_spec
from scalelab.spec.models import ExperimentSpec

IMAGE_MODELS = "/opt/scalelab/models"
COMPONENTS = ("tracker", "worker", "producer")


@dataclass(frozen=True)
class Plan:
    spec: ExperimentSpec
    run_id: str
    settings: KubernetesSpec = field(default_factory=KubernetesSpec)

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, run_id: str) -> Plan:
        plan = cls(spec, run_id, kubernetes_settings(spec))
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
    def cluster_bootstrap(self) -> str:
        """The bootstrap address pods use."""
        return self.spec.broker.bootstrap or kafka.bootstrap_address(self.namespace)

    @property
    def client_bootstrap(self) -> str:
        """The bootstrap address scalelab itself uses (through port-forwards when it deploys)."""
        if self.managed_kafka:
            return f"127.0.0.1:{self.settings.kafka.client_port}"
        return self.settings.kafka.client_bootstrap or self.cluster_bootstrap

    @property
    def worker_replicas(self) -> int:
        scaling = self.settings.autoscaling
        if scaling.enabled and scaling.min_replicas is not None:
            return scaling.min_replicas
        return self.spec.workload.workers

    @property
    def model_path(self) -> str:
        """The model file as the worker pods see it."""
        if self.settings.model_path:
            return self.settings.model_path
        model = self.spec.workload.model
        if self.settings.model_pvc:
            return f"{base.MODELS_DIR}/{Path(model).name}"
        return f"{IMAGE_MODELS}/{model}.onnx"

    @property
    def resolved_spec(self) -> str:
        return dump_spec(self.spec)

    # -- checks -------------------------------------------------------------------------
    def check(self) -> None:
        """Settings that cannot work on a cluster fail here, before anything is applied."""
        model = self.spec.workload.model
        if model not in BUILDERS and not (self.settings.model_path or self.settings.model_pvc):
            raise ConfigError(
                f"workload.model {model!r} is a file on this machine: pods cannot read it; set "
                "platform.kubernetes.model_path (a path baked into the image) or model_pvc"
            )
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

    def kafka_objects(self) -> list[Manifest]:
        return kafka.kafka_objects(self) if self.managed_kafka else []

    def component_objects(
        self, component: str, extra: list[str] | None = None, env: dict[str, str] | None = None
    ) -> list[Manifest]:
        return components.component_objects(self, component, extra, env)

    def all_objects(self) -> list[Manifest]:
        objects = self.base_objects() + self.kafka_objects()
        for component in COMPONENTS:
            objects += self.component_objects(component)
        return objects
