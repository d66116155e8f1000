"""The run's components as the core names them, mapped onto pods and watched through the API.

`worker-0` … `worker-N` are the replicas of one Deployment, mapped to its
pods in the order they started. A component exits through podwrap: a clean
exit keeps its container up until its files are copied into the run
directory; a failure ends the container, which the pod's status shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from scalelab.components.producer import START_FILE
from scalelab.errors import ComponentError
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.client import Cluster
from scalelab.platform.kubernetes.errors import ApiError
from scalelab.platform.kubernetes.health import (
    pending_reason,
    pod_problem,
    restarted,
    started_at,
)
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.manifests.base import DATA_DIR
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.kubernetes.pods import PodOps
from scalelab.platform.kubernetes.readiness import pod_ready

OUTPUTS: dict[str, tuple[str, ...]] = {"producer": ("producer.json",), "tracker": ("qos.parquet",)}
EARLY_OUTPUTS: dict[str, tuple[str, ...]] = {"producer": (START_FILE,)}
CHECK_INTERVAL_S = 1.0
TAIL_LINES = 40


@dataclass
class Component:
    name: str
    started: bool = False
    may_finish: bool = False
    finished: dict[str, int] = field(default_factory=dict)  # pod -> exit code
    expected: set[str] = field(default_factory=set)  # pods stopped or killed on purpose


class Tracker:
    def __init__(self, cluster: Cluster, pods: PodOps, plan: Plan, run_dir: Path):
        self.cluster = cluster
        self.pods = pods
        self.plan = plan
        self.run_dir = run_dir
        self.components: dict[str, Component] = {}
        self.names: dict[str, str] = {}
        self.pod_names: dict[str, str] = {}
        self.copied: set[str] = set()
        self.last_check = 0.0

    # -- names ----------------------------------------------------------------------------
    def add_name(self, name: str, component: str) -> bool:
        """Remember a core name; True when its component has no objects yet."""
        self.names[name] = component
        if component in self.components:
            return False
        self.components[component] = Component(component)
        return True

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
        if name not in self.pod_names:
            component = self.names[name]
            siblings = sorted(n for n, c in self.names.items() if c == component)
            pods = self.pods_of(component)
            index = siblings.index(name) if component == "worker" else 0
            if index >= len(pods):
                return None
            self.pod_names[name] = pods[index]["metadata"]["name"]
        return self.pod_names[name]

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
            c.name: counts[c.name] for c in self.components.values() if c.started and not c.finished
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
        """Delete the pod at once (grace 0): the failure experiment's SIGKILL."""
        component = self.component(name)
        pod = self.pod_for(name)
        if pod is None:
            return
        component.expected.add(pod)
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": self.plan.namespace},
        }
        self.cluster.delete(obj, grace_seconds=0)

    def collect_outputs(self, timeout: float = 60.0) -> None:
        """At teardown: stop what still runs and has files to give (a failed run's data too)."""
        for component in list(self.components.values()):
            if component.name not in OUTPUTS:
                continue
            for name in [n for n, c in self.names.items() if c == component.name]:
                pod = self.pod_for(name)
                if pod is not None and pod not in component.finished:
                    self.stop(name, timeout)
