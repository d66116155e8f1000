"""The Kubernetes platform: the same run as locally, with the components as pods.

Construction connects to the cluster and checks it (operators, namespace), so
a spec that asks for an unreachable cluster fails before anything exists.
Infrastructure is the run's own Kafka and Prometheus (self-contained mode),
or Strimzi Kafka (or the spec's `broker.bootstrap`) and the cluster's
kube-prometheus-stack; scalelab reaches them through port-forwards from this
machine. Files the core reads from the run directory (the
producer's start and report, the tracker's qos.parquet) are copied out of
the pods when they appear.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from scalelab.errors import ComponentError
from scalelab.platform.base import ComponentLaunch, Endpoints, Platform, PlatformEvent
from scalelab.platform.kubernetes import labels, nodes, status, teardown
from scalelab.platform.kubernetes.api import PodOps, PortForward, connect, pod_opener
from scalelab.platform.kubernetes.errors import KubernetesError
from scalelab.platform.kubernetes.flink import FlinkOnCluster
from scalelab.platform.kubernetes.manifests import Manifest, own_kafka, own_prometheus
from scalelab.platform.kubernetes.manifests.kafka import LOCAL_PORT, node_pod
from scalelab.platform.kubernetes.plan import Plan, component_of, role_args
from scalelab.platform.kubernetes.preflight import preflight
from scalelab.platform.kubernetes.scaling import HpaStatus, KubernetesWorkers, read_hpa
from scalelab.platform.kubernetes.status import (
    PROMETHEUS_PODS,
    PROMETHEUS_PORT,
    find_pod,
    is_ready,
    missing_targets,
)
from scalelab.platform.kubernetes.tracking import Tracker
from scalelab.platform.ports import free_port
from scalelab.spec.models import ExperimentSpec

PROMETHEUS_READY_TIMEOUT = 60.0


class KubernetesPlatform(Platform):
    """Strimzi Kafka, the cluster's Prometheus, and scalelab's components as pods."""

    name = "kubernetes"

    def __init__(
        self, spec: ExperimentSpec, run_id: str, run_dir: Path, state_dir: Path, detached: bool
    ):
        self.spec = spec
        self.run_id = run_id
        self.run_dir = run_dir
        self.detached = detached
        Plan.for_spec(spec, run_id)  # a spec that cannot work fails before any connection
        self.cluster = connect(_kubeconfig(spec), spec.platform.context)
        self.plan = Plan.for_spec(spec, run_id, self.cluster.has_kind, _client_port(spec))
        preflight(self.cluster, self.plan)
        self.pods = PodOps(self.cluster.core, self.plan.namespace)
        self.tracker = Tracker(self.cluster, self.pods, self.plan, run_dir)
        self.forwards: list[PortForward] = []
        self.node_roles: dict[str, str] = {}
        self.endpoints: Endpoints | None = None
        self.seen_events: set[str] = set()
        self.hpa_seen: dict[str, int] = {}  # the HPA's rescale events read as decisions
        self.flink: FlinkOnCluster | None = None
        if self.plan.flink is not None:
            self.flink = FlinkOnCluster(self.cluster, self.plan, self.tracker, self.plan.flink)

    # -- infrastructure -------------------------------------------------------------------
    def start_infrastructure(self) -> Endpoints:
        roles = self.plan.settings.node_roles
        if roles.enabled:
            self.node_roles = nodes.apply_roles(self.cluster, roles)
        self._apply(self.plan.base_objects())
        # the run's own broker and Prometheus are watched like components from the start:
        # an image that cannot be pulled or a crash fails the run at once, naming them
        if self.plan.own_monitoring:
            self.tracker.watch_infrastructure("prometheus")
        self._apply(self.plan.monitoring_objects())
        if self.plan.own_kafka:
            self.tracker.watch_infrastructure("kafka")
        self._apply(self.plan.kafka_objects())
        flink_url = self._start_flink() if self.flink is not None else None
        bootstrap = self._forward_kafka() if self.plan.managed_kafka else self.plan.client_bootstrap
        self.endpoints = Endpoints(
            bootstrap=bootstrap,
            prometheus_url=self._forward_prometheus(),
            extra={
                "namespace": self.plan.namespace,
                "cluster_bootstrap": self.plan.cluster_bootstrap,
                **({"flink": flink_url} if flink_url else {}),
            },
        )
        if self.plan.managed_kafka or self.flink is not None:
            self.wait_scraped(self.plan.settings.ready_timeout)
        return self.endpoints

    def _start_flink(self) -> str:
        """The Flink cluster's objects, watched like the broker's; ready once REST answers
        through the port-forward and every TaskManager's slots are registered."""
        assert self.flink is not None
        for role in ("jobmanager", "taskmanager"):
            self.tracker.watch_infrastructure(role)
        self._apply(self.plan.flink_objects())
        url = self.flink.forward_rest()
        took = self.flink.wait_ready(url, self.plan.settings.ready_timeout, self.check_health)
        self.report(f"flink: TaskManager slots registered {took:.1f} s after the JobManager")
        return url

    def kill_taskmanager(self, index: int) -> tuple[str, str]:
        """`kill-taskmanager`: the TaskManager pod deleted at once; its Deployment starts
        another (Flink restarts the job from its last checkpoint either way)."""
        if self.flink is None:
            raise ComponentError("flink", "this run has no Flink cluster")
        return self.flink.kill_taskmanager(index)

    def _apply(self, objects: list[Manifest]) -> None:
        """Apply in order, then wait for each object that has a readiness condition."""
        applied = [obj for obj in objects if self._should_apply(obj)]
        for obj in applied:
            self.cluster.apply(obj)
        for obj in applied:
            if status.waits_for(obj["kind"]):
                self._wait_ready(obj)

    def _wait_ready(self, obj: Manifest) -> None:
        """Wait for an object; on timeout say what its pods are waiting for."""
        timeout = self.plan.settings.ready_timeout
        predicate = status.predicate(obj["kind"])
        try:
            self.cluster.wait_for(obj, predicate, timeout, check=self.check_health)
        except ComponentError as error:
            component = obj["metadata"].get("labels", {}).get(labels.COMPONENT)
            pods = self.tracker.pod_states(component) if component else ""
            raise ComponentError(error.component, f"{error.reason}{pods}") from error

    def _should_apply(self, obj: Manifest) -> bool:
        """A namespace that exists is the user's: use it, never own it (nor delete it). One an
        earlier run is still deleting is waited for, then created anew."""
        if obj["kind"] != "Namespace":
            return True
        name = obj["metadata"]["name"]
        deadline = time.monotonic() + self.plan.settings.ready_timeout
        while (found := self.cluster.get("v1", "Namespace", name)) is not None:
            if (found.get("status") or {}).get("phase") != "Terminating":
                return False
            if time.monotonic() > deadline:
                raise ComponentError(f"namespace {name}", "still terminating")
            time.sleep(1.0)
        return True

    def _forward_kafka(self) -> str:
        first = self.plan.client_port
        if self.plan.own_kafka:
            opener = pod_opener(
                self.cluster.core, self.plan.namespace, own_kafka.POD, own_kafka.LOCAL_PORT
            )
            self.forwards.append(PortForward("kafka", opener, first))
            return self.plan.client_bootstrap
        for node in range(self.plan.settings.kafka.replicas):
            opener = pod_opener(self.cluster.core, self.plan.namespace, node_pod(node), LOCAL_PORT)
            self.forwards.append(PortForward(f"kafka-{node}", opener, first + node))
        return self.plan.client_bootstrap

    def _forward_prometheus(self) -> str:
        namespace, selector = self.plan.settings.monitoring.namespace, PROMETHEUS_PODS
        if self.plan.own_monitoring:
            namespace = self.plan.namespace
            selector = (
                f"{labels.run_selector(self.run_id)},{labels.COMPONENT}={own_prometheus.NAME}"
            )
        pod = find_pod(self.cluster, namespace, selector, "Prometheus")
        forward = PortForward(
            "prometheus", pod_opener(self.cluster.core, namespace, pod, PROMETHEUS_PORT)
        )
        self.forwards.append(forward)
        url = f"http://{forward.address}"
        deadline = time.monotonic() + PROMETHEUS_READY_TIMEOUT
        while not is_ready(url):
            if time.monotonic() > deadline:
                raise ComponentError(
                    "prometheus",
                    f"{namespace}/{pod} not ready through the "
                    f"port-forward: {'; '.join(forward.errors[-3:])}",
                )
            time.sleep(0.5)
        return url

    def wait_scraped(self, timeout: float) -> None:
        assert self.endpoints is not None
        expected = self.tracker.expected_targets()
        if self.plan.managed_kafka:
            expected["kafka"] = self.plan.settings.kafka.replicas
        if self.flink is not None:
            expected.update(self.flink.expected_targets())
        deadline = time.monotonic() + timeout
        while missing := missing_targets(self.endpoints.prometheus_url, self.run_id, expected):
            self.check_health()
            if time.monotonic() > deadline:
                raise ComponentError(
                    "prometheus",
                    f"targets never scraped: {missing} (are the "
                    "monitors selected by the cluster's Prometheus?)",
                )
            time.sleep(1.0)

    # -- components -----------------------------------------------------------------------
    def start_component(self, launch: ComponentLaunch) -> None:
        component = component_of(launch)
        if self.tracker.add_name(launch.name, component):
            objects = self.plan.component_objects(
                component, role_args(self.plan, launch), launch.env
            )
            self._apply(objects)
            self.tracker.started(component)

    def stop_component(self, name: str, timeout: float = 30.0) -> int | None:
        return self.tracker.stop(name, timeout)

    def kill_component(self, name: str) -> None:
        self.tracker.kill(name)

    def mark_may_finish(self, name: str) -> None:
        self.tracker.may_finish(name)

    def check_health(self) -> None:
        self.tracker.check()

    def is_running(self, name: str) -> bool:
        """Whether a component still runs (the pods have no local process ids)."""
        return self.tracker.is_running(name)

    def versions(self) -> dict[str, str]:
        settings = self.plan.settings
        found = {"image": settings.image, "kafka_mode": self.plan.kafka_mode}
        found["monitoring_mode"] = self.plan.monitoring_mode
        if self.flink is not None:
            found.update(flink=self.flink.version(), flink_mode=self.plan.flink_mode)
        if self.plan.own_kafka:
            return {**found, "kafka": self._image_kafka_version()}
        return {**found, "kafka": settings.kafka.kafka_version, "kepler": settings.kepler_version}

    def _image_kafka_version(self) -> str:
        """The Kafka jar the broker pod runs (the image decides it, not a setting)."""
        try:
            _, out = self.pods.exec(own_kafka.POD, "kafka", ["ls", own_kafka.LIB])
        except KubernetesError:
            return "unknown"
        jars = [n for n in out.split() if n.startswith("kafka_2.13-") and n.endswith(".jar")]
        return jars[0].removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"

    def read_result(self, name: str, file: str) -> bytes | None:
        """A result file a component wrote into its data volume, read through exec (or the
        copy kept once the component finished); None while it does not exist."""
        return self.tracker.read_result(name, file)

    def component_pids(self) -> dict[str, int]:
        """Pods have no process ids on this machine; CPU comes from Prometheus (cAdvisor)."""
        return {}

    def events(self) -> list[PlatformEvent]:
        """Pods killed or replaced, and the autoscaler's decisions, each once."""
        taken, self.tracker.events = self.tracker.events, []
        return taken + self._autoscaler_events()

    def _autoscaler_events(self) -> list[PlatformEvent]:
        """The workers' HorizontalPodAutoscaler's events (`SuccessfulRescale`: a decision)."""
        if not self.plan.settings.autoscaling.enabled:
            return []
        selector = (
            f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={labels.WORKERS}"
        )
        try:
            found = self.cluster.core.list_namespaced_event(
                self.plan.namespace, field_selector=selector
            ).items
        except Exception:  # noqa: BLE001 - events are best effort; the next call retries
            return []
        new = []
        for event in sorted(found, key=lambda e: str(e.metadata.creation_timestamp)):
            if event.metadata.uid in self.seen_events:
                continue
            self.seen_events.add(event.metadata.uid)
            detail = f"{event.reason}: {event.message}"
            new.append(PlatformEvent("autoscaler", detail, "worker"))
        return new

    # -- the workers as the autoscaler's actuator; the cluster HPA as data (scaling.py) ---
    def worker_actuator(self, launch: Callable[[str], ComponentLaunch]) -> KubernetesWorkers:
        return KubernetesWorkers(self, launch)

    def hpa_status(self) -> HpaStatus | None:
        return read_hpa(self, self.hpa_seen)

    def worker_series(self) -> tuple[str, str]:
        """Every worker pod is `component="worker"`, one from another by `instance` (its pod)."""
        return f'run_id="{self.run_id}",component="worker"', "instance"

    # -- teardown -------------------------------------------------------------------------
    def teardown(self) -> None:
        """Copy what the run left in its pods, save the logs, delete every object of the run."""
        errors: list[str] = []
        try:
            try:  # a failure here must not cost the logs, which say why it failed
                self.tracker.collect_outputs()
            except (KubernetesError, ComponentError, OSError) as error:
                errors.append(f"collecting outputs: {error}")
            try:
                teardown.collect_logs(
                    self.cluster, self.pods, self.plan.namespace, self.run_id, self.run_dir / "logs"
                )
            except (KubernetesError, OSError) as error:
                errors.append(f"collecting logs: {error}")
        finally:
            errors += teardown.delete_run(self.cluster, self.plan.namespace, self.run_id)
            if self.node_roles:
                nodes.remove_roles(self.cluster, self.plan.settings.node_roles, self.node_roles)
            for forward in self.forwards:
                forward.close()
            if self.flink is not None:
                self.flink.close()
        if errors:
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "logs" / "teardown-errors.log").write_text("\n".join(errors) + "\n")
            raise ComponentError("teardown", "; ".join(errors))


def _client_port(spec: ExperimentSpec) -> int | None:
    """Our own broker advertises the local end of its port-forward: a free port unless the
    spec fixed one, so that two runs (or tests) on one machine never collide."""
    kafka = spec.platform.kubernetes.kafka
    fixed = "client_port" in kafka.model_fields_set or kafka.mode == "strimzi"
    return None if fixed else free_port()


def _kubeconfig(spec: ExperimentSpec) -> str | None:
    """A relative kubeconfig is relative to the spec's file, like the spec's other paths."""
    given = spec.platform.kubeconfig
    if given is None or Path(given).expanduser().is_absolute() or spec.base_dir is None:
        return None if given is None else str(Path(given).expanduser())
    return str(Path(spec.base_dir) / given)
