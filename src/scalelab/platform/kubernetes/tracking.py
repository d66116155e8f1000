"""The run's components as the core names them, mapped onto pods and watched through the API.

`worker-0` … `worker-N` are the replicas of one Deployment, mapped to its
pods in the order they started. The mapping is checked on every lookup: a
name whose pod is gone (evicted, deleted by someone else) takes the pod its
Deployment started in its place, so health checks, stops and logs reach the
pod that runs now. A name stopped or killed on purpose keeps its pod.

A component exits through podwrap: a clean exit keeps its container up until
its files are copied into the run directory; a failure ends the container,
which the pod's status shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from scalelab.components.producer import START_FILE
from scalelab.errors import ComponentError
from scalelab.platform.base import PlatformEvent
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.api import Cluster, PodOps
from scalelab.platform.kubernetes.errors import ApiError
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.manifests.base import DATA_DIR
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.kubernetes.status import (
    pending_reason,
    pod_problem,
    pod_ready,
    restarted,
    started_at,
)

OUTPUTS: dict[str, tuple[str, ...]] = {
    "producer": ("producer.json",),
    "tracker": ("qos.parquet", "tracker.json"),
}
EARLY_OUTPUTS: dict[str, tuple[str, ...]] = {"producer": (START_FILE,)}
CHECK_INTERVAL_S = 1.0
TAIL_LINES = 40
KILLED_EXIT_CODE = -9  # what the local platform's Popen reports for a SIGKILLed worker
DEPLOYMENTS = {"worker": labels.WORKERS, "tracker": labels.TRACKER}


@dataclass
class Component:
    name: str
    started: bool = False
    may_finish: bool = False
    finished: dict[str, int] = field(default_factory=dict)  # pod -> exit code
    expected: set[str] = field(default_factory=set)  # pods stopped or killed on purpose
    killed: set[str] = field(default_factory=set)  # pods killed (never replaced)

    def holds(self, pod: str) -> bool:
        """A pod that keeps its name whatever happens to it: stopped, killed or finished."""
        return pod in self.expected or pod in self.finished


class Tracker:
    def __init__(self, cluster: Cluster, pods: PodOps, plan: Plan, run_dir: Path):
        self.cluster = cluster
        self.pods = pods
        self.plan = plan
        self.run_dir = run_dir
        self.components: dict[str, Component] = {}
        self.names: dict[str, str] = {}
        self.pod_names: dict[str, str] = {}
        self.lost: dict[str, str] = {}  # name -> its pod that went away, not yet replaced
        self.copied: set[str] = set()
        self.last_check = 0.0
        self.events: list[PlatformEvent] = []  # for the run record, taken by the platform

    # -- names ----------------------------------------------------------------------------
    def add_name(self, name: str, component: str) -> bool:
        """Remember a core name; True when its component has no objects yet."""
        self.names[name] = component
        if component in self.components:
            return False
        self.components[component] = Component(component)
        return True

    def watch_infrastructure(self, component: str) -> None:
        """Health-check the run's own broker or Prometheus pods like a component's."""
        self.add_name(component, component)
        self.started(component)

    def started(self, component: str) -> None:
        self.components[component].started = True

    def component(self, name: str) -> Component:
        if name not in self.names:
            raise ComponentError(name, "no such component in this run")
        return self.components[self.names[name]]

    def pods_of(self, component: str) -> list[Manifest]:
        selector = f"{labels.run_selector(self.plan.run_id)},{labels.COMPONENT}={component}"
        found = self.cluster.list("v1", "Pod", self.plan.namespace, selector)
        return sorted(
            (p for p in found if not p["metadata"].get("deletionTimestamp")), key=started_at
        )

    def pod_for(self, name: str) -> str | None:
        """The pod that runs a core name now (None while it has none)."""
        component = self.component(name)
        pod = self.pod_names.get(name)
        if pod is not None and component.holds(pod):
            return pod
        self._map(component)
        return self.pod_names.get(name)

    def _map(self, component: Component) -> None:
        """Drop names whose pod is gone, then give unmapped names the unclaimed pods, both
        in start order (worker-0 first)."""
        names = [n for n, c in self.names.items() if c == component.name]
        pods = [p["metadata"]["name"] for p in self.pods_of(component.name)]
        for name in names:
            pod = self.pod_names.get(name)
            if pod is not None and pod not in pods and not component.holds(pod):
                self.lost[name] = self.pod_names.pop(name)  # until a replacement shows up
        claimed = set(self.pod_names.values())
        free = [p for p in pods if p not in claimed]
        for name in names:
            if name not in self.pod_names and free:
                self.pod_names[name] = free.pop(0)
                if name in self.lost:
                    old = self.lost.pop(name)
                    detail = f"{name}: pod {old} gone, replaced by {self.pod_names[name]}"
                    self.events.append(PlatformEvent("pod-replaced", detail, name))

    def pod_states(self, component: str) -> str:
        """'; pods: name (why it is not running), ...' for timeout messages."""
        states = [
            f"{p['metadata']['name']} ({pending_reason(p) or pod_problem(p) or 'running'})"
            for p in self.pods_of(component)
        ]
        return f"; pods: {', '.join(states)}" if states else "; no pods"

    def expected_targets(self) -> dict[str, int]:
        counts = {"worker": self.plan.worker_replicas, "tracker": 1, "producer": 1}
        return {
            c.name: counts[c.name] - len(c.killed)
            for c in self.components.values()
            if c.started and not c.finished and c.name in counts
        }

    # -- health ---------------------------------------------------------------------------
    def check(self, force: bool = False) -> None:
        """Raise ComponentError for a failed pod; copy files components have written."""
        if not force and time.monotonic() - self.last_check < CHECK_INTERVAL_S:
            return
        self.last_check = time.monotonic()
        for component in list(self.components.values()):
            for pod in self.pods_of(component.name):
                self._check_pod(component, pod)

    def _check_pod(self, component: Component, pod: Manifest) -> None:
        name = pod["metadata"]["name"]
        if name in component.expected or name in component.finished:
            return
        problem = pod_problem(pod)
        if problem:
            raise ComponentError(component.name, f"pod {name}: {problem}", self._tail(pod))
        if not component.started:
            return
        if pod_ready(pod):
            self._copy_early(component.name, name)
        else:
            self._check_exit(component, pod)

    def _check_exit(self, component: Component, pod: Manifest) -> None:
        """A pod no longer ready: its component may have exited (podwrap keeps it up)."""
        name = pod["metadata"]["name"]
        try:
            code = self.pods.exit_code(name, component.name, DATA_DIR)
        except ApiError:
            return  # not reachable this moment; the status will tell next time
        if code is None:
            return
        if code == 0 and component.may_finish:
            self._finish(component, name, code)
            return
        raise ComponentError(
            component.name, f"pod {name}: exited with code {code}", self._tail(pod)
        )

    def _finish(self, component: Component, pod: str, code: int) -> None:
        self._copy(component.name, pod, EARLY_OUTPUTS)
        self._copy(component.name, pod, OUTPUTS)
        component.finished[pod] = code
        if component.name == "producer":
            self.pods.signal(pod, component.name, "SIGUSR2")  # let the Job complete

    def _copy_early(self, component: str, pod: str) -> None:
        """Files written while the component runs; a failed exec is retried on the next check."""
        try:
            self._copy(component, pod, EARLY_OUTPUTS)
        except ApiError:
            return

    def _copy(self, component: str, pod: str, outputs: dict[str, tuple[str, ...]]) -> None:
        for file in outputs.get(component, ()):
            if file not in self.copied and self.pods.copy_file(
                pod, component, f"{DATA_DIR}/{file}", self.run_dir / file
            ):
                self.copied.add(file)

    def read_result(self, name: str, file: str) -> bytes | None:
        """A component's result file: the copy once taken, else read from its pod now."""
        if file in self.copied:
            return (self.run_dir / file).read_bytes()
        pod = self.pod_for(name)
        if pod is None:
            return None
        try:
            return self.pods.read_file(pod, self.names[name], f"{DATA_DIR}/{file}")
        except ApiError:
            return None

    def _tail(self, pod: Manifest) -> str:
        name = pod["metadata"]["name"]
        container = pod["metadata"]["labels"].get(labels.COMPONENT, "")
        return self.pods.logs(name, container, previous=restarted(pod), tail=TAIL_LINES)

    # -- control --------------------------------------------------------------------------
    def is_running(self, name: str) -> bool:
        component = self.component(name)
        self.check(force=True)
        pod = self.pod_for(name)
        return pod is not None and pod not in component.finished and pod not in component.expected

    def may_finish(self, name: str) -> None:
        self.component(name).may_finish = True

    def stop(self, name: str, timeout: float) -> int | None:
        """SIGTERM to the component (it drains), wait for its exit, copy its files."""
        component = self.component(name)
        pod = self.pod_for(name)
        if pod is None:
            return None
        if pod in component.killed:
            return KILLED_EXIT_CODE
        component.expected.add(pod)
        if pod in component.finished:
            return component.finished[pod]
        self.pods.signal(pod, component.name, "SIGUSR1")
        deadline = time.monotonic() + timeout
        while (code := self.pods.exit_code(pod, component.name, DATA_DIR)) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)
        self._finish(component, pod, code)
        return code

    def kill(self, name: str) -> None:
        """The failure experiment's SIGKILL, meaning what it means locally: the component
        dies without warning and nothing takes its place, so the others must take over.

        The pod is deleted at once (grace 0: no SIGTERM, no drain, no commit), then its
        Deployment is scaled down by one so that its ReplicaSet does not start a
        replacement (one it already started is still Pending, which the ReplicaSet
        removes first when it scales down). With autoscaling the autoscaler's minimum
        is lowered too; the autoscaler may still add workers on load, as is its job.
        """
        component = self.component(name)
        pod = self.pod_for(name)
        if pod is None or pod in component.killed:
            return
        component.expected.add(pod)
        component.killed.add(pod)
        self._save_log(pod, component.name)  # a deleted pod's log is gone; a local one stays
        namespace = self.plan.namespace
        target = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": namespace},
        }
        # Should the ReplicaSet still see it when the replicas drop, it deletes this one.
        first_out = {labels.DELETION_COST: labels.FIRST_OUT}
        self.cluster.patch(target, {"metadata": {"annotations": first_out}})
        self.cluster.delete(target, grace_seconds=0)
        detail = f"{name}: pod {pod} deleted at once, not replaced"
        if component.name in DEPLOYMENTS:
            detail += f" ({self._scale_down(DEPLOYMENTS[component.name])})"
        self.events.append(PlatformEvent("pod-killed", detail, name))

    def _save_log(self, pod: str, container: str) -> None:
        """The log so far; a run directory that cannot take it never stops the kill."""
        logs = self.run_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{pod}.log").write_text(self.pods.logs(pod, container))
        except OSError:
            return

    def _scale_down(self, deployment: str) -> str:
        """Lowers the Deployment (and an HPA's minimum) by one; says what it changed."""
        lowered = self._decrement("apps/v1", "Deployment", deployment, "replicas", 0)
        if deployment == labels.WORKERS and self.plan.settings.autoscaling.enabled:
            self._decrement(
                "autoscaling/v2", "HorizontalPodAutoscaler", deployment, "minReplicas", 1
            )
        return lowered

    def _decrement(self, api_version: str, kind: str, name: str, key: str, floor: int) -> str:
        """Lower a count in an object's spec by one (read, then patch: one kill at a time);
        says what it changed."""
        found = self.cluster.get(api_version, kind, name, self.plan.namespace)
        if found is None:
            return f"{kind} {name} not found: {key} unchanged"
        count = int((found.get("spec") or {}).get(key, 1))
        ref = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": self.plan.namespace},
        }
        lowered = max(floor, count - 1)
        self.cluster.patch(ref, {"spec": {key: lowered}})
        return f"{kind} {name} {key} {count} → {lowered}"

    def collect_outputs(self, timeout: float = 60.0) -> None:
        """At teardown: stop what still runs and has files to give (a failed run's data too)."""
        for component in list(self.components.values()):
            if component.name not in OUTPUTS:
                continue
            for name in [n for n, c in self.names.items() if c == component.name]:
                pod = self.pod_for(name)
                if pod is not None and pod not in component.finished:
                    self.stop(name, timeout)
