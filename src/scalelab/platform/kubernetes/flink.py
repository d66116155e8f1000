"""A Flink run's session cluster on Kubernetes, as the orchestrator sees it.

The objects (the run's own JobManager/TaskManager Deployments, or a FlinkDeployment) come
from the plan; this module reaches the JobManager's REST API through a port-forward (the
orchestrator submits, rescales and stops the job there, as locally), says when the cluster
is ready (REST answers and every TaskManager's slots are registered), and kills a
TaskManager pod for the `kill-taskmanager` fault: its Deployment starts a new pod in its
place, as the local platform starts a new process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from scalelab.errors import ComponentError
from scalelab.platform.base import PlatformEvent
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.api import Cluster, PortForward, pod_opener
from scalelab.platform.kubernetes.errors import PrerequisiteError
from scalelab.platform.kubernetes.manifests.flink import JOBMANAGER, REST_PORT, TASKMANAGER
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.kubernetes.status import find_pod
from scalelab.platform.kubernetes.tracking import Tracker
from scalelab.platform.local.flink_rest import FlinkJobError, FlinkRest
from scalelab.spec.models import FlinkWorkload

REPLACEMENT_WAIT_S = 15.0


def slots_registered(rest: FlinkRest, taskmanagers: int, slots: int) -> bool:
    """True once `taskmanagers` TaskManagers and their `slots` slots each are registered."""
    try:
        overview = rest.overview()
    except FlinkJobError:
        return False
    registered = int(overview.get("taskmanagers", 0))
    return registered >= taskmanagers and int(overview.get("slots-total", 0)) >= slots


class FlinkOnCluster:
    """The JobManager's REST port-forward, readiness and TaskManager kills of one run."""

    def __init__(self, cluster: Cluster, plan: Plan, tracker: Tracker, workload: FlinkWorkload):
        self.cluster = cluster
        self.plan = plan
        self.tracker = tracker
        self.workload = workload
        self.forward: PortForward | None = None
        self.killed: list[str] = []

    def _selector(self, role: str) -> str:
        return f"{labels.run_selector(self.plan.run_id)},{labels.COMPONENT}={role}"

    def forward_rest(self) -> str:
        """A port-forward to the JobManager pod's REST port; returns its URL."""
        try:
            pod = find_pod(
                self.cluster, self.plan.namespace, self._selector(JOBMANAGER), "Flink JobManager"
            )
        except PrerequisiteError as error:
            raise ComponentError(JOBMANAGER, "no ready JobManager pod") from error
        opener = pod_opener(self.cluster.core, self.plan.namespace, pod, REST_PORT)
        self.forward = PortForward("flink-rest", opener)
        return f"http://{self.forward.address}"

    def wait_ready(self, url: str, timeout: float, check: Callable[[], None]) -> float:
        """Until REST answers and every TaskManager's slots are registered; the seconds it
        took."""
        wl = self.workload
        slots = wl.taskmanagers * wl.slots_per_taskmanager
        rest = FlinkRest(url)
        began = time.monotonic()
        try:
            while not slots_registered(rest, wl.taskmanagers, slots):
                check()
                if time.monotonic() - began > timeout:
                    errors = "; ".join(self.forward.errors[-3:]) if self.forward else ""
                    raise ComponentError(
                        JOBMANAGER,
                        f"{wl.taskmanagers} TaskManager(s) with {slots} slots not registered "
                        f"after {timeout:g} s{self.tracker.pod_states(TASKMANAGER)}"
                        + (f"; port-forward: {errors}" if errors else ""),
                    )
                time.sleep(1.0)
        finally:
            rest.close()
        return time.monotonic() - began

    def expected_targets(self) -> dict[str, int]:
        return {JOBMANAGER: 1, TASKMANAGER: self.workload.taskmanagers}

    def kill_taskmanager(self, index: int) -> tuple[str, str]:
        """Delete the index-th TaskManager pod (in start order) at once, without a grace
        period; its Deployment starts a new one. Returns (victim, replacement) pod names."""
        pods = [p["metadata"]["name"] for p in self.tracker.pods_of(TASKMANAGER)]
        if not pods:
            raise ComponentError(TASKMANAGER, "no TaskManager pod to kill")
        victim = pods[min(index, len(pods) - 1)]
        self._save_log(victim)  # a deleted pod's log is gone
        target = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": victim, "namespace": self.plan.namespace},
        }
        self.cluster.delete(target, grace_seconds=0)
        self.killed.append(victim)
        replacement = self._replacement(set(pods))
        detail = f"{victim} deleted at once; the Deployment started {replacement}"
        self.tracker.events.append(PlatformEvent("pod-killed", detail, TASKMANAGER))
        return victim, replacement

    def _save_log(self, pod: str) -> None:
        logs = self.tracker.run_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{pod}.log").write_text(self.tracker.pods.logs(pod, TASKMANAGER))
        except OSError:
            return

    def _replacement(self, before: set[str]) -> str:
        """The pod the Deployment starts in the victim's place (its name, once it exists)."""
        deadline = time.monotonic() + REPLACEMENT_WAIT_S
        while time.monotonic() < deadline:
            new = [
                p["metadata"]["name"]
                for p in self.tracker.pods_of(TASKMANAGER)
                if p["metadata"]["name"] not in before
            ]
            if new:
                return new[0]
            time.sleep(0.5)
        return "a new pod (not yet created)"

    def version(self) -> str:
        """The Flink version the JobManager reports (`GET /config`), or 'unknown'."""
        if self.forward is None:
            return "unknown"
        try:
            body = httpx.get(f"http://{self.forward.address}/config", timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            return "unknown"
        return str(body.get("flink-version") or "unknown")

    def close(self) -> None:
        if self.forward is not None:
            self.forward.close()
