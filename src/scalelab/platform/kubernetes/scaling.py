"""The workers' Deployment as the autoscaler's actuator, and the cluster HPA as data.

`KubernetesWorkers` gives the core what `LocalWorkers` gives it locally: `scale_to(n)`,
`current()`, the live names (worker-0, worker-1, …, never reused) and `stop_all()`.

- Scaling up patches the Deployment's `spec.replicas`; the new names take the new pods
  (the pod tracker maps unclaimed pods to unmapped names in start order).
- Scaling down removes the newest names, as locally: their pods get the lowest
  `controller.kubernetes.io/pod-deletion-cost`, so the ReplicaSet deletes exactly them when
  `spec.replicas` drops. Deletion is SIGTERM: podwrap passes it on, the worker finishes and
  commits its batch and leaves the group, so nothing is lost. Their logs are saved while
  they drain (a deleted pod's log is gone at teardown).
- `settled(n)`: the first time the Deployment had n pods, all ready, and none draining.
- kill-worker (the tracker deletes the pod and lowers `spec.replicas` by one) and `lost(name)`
  keep the count the same on both sides, so the two never fight.

With `policy: hpa` the cluster's HPA owns the replicas: the names follow what it did
(`follow(n)`), and `stop_all` deletes the HPA first so that it scales nothing while the
workers stop. `read_hpa` turns the HPA's status and `SuccessfulRescale` events into data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.autoscale.actuator import STOP_TIMEOUT_S
from scalelab.autoscale.cluster_hpa import HpaRescale, HpaStatus
from scalelab.platform.base import ComponentLaunch
from scalelab.platform.kubernetes import labels
from scalelab.platform.kubernetes.errors import ApiError
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.status import pod_ready, started_at

if TYPE_CHECKING:
    from scalelab.platform.kubernetes.api import LogFollower
    from scalelab.platform.kubernetes.platform import KubernetesPlatform

DELETION_COST, FIRST_OUT = labels.DELETION_COST, labels.FIRST_OUT
NEW_SIZE = re.compile(r"New size: (\d+); reason: (.*)")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")


class KubernetesWorkers:
    def __init__(self, platform: KubernetesPlatform, launch: Callable[[str], ComponentLaunch]):
        self.platform = platform
        self.launch = launch
        self.live: list[str] = []
        self.started: list[str] = []
        self.draining: dict[str, str] = {}  # pod -> name: removed, not gone yet
        self.logs: dict[str, str] = {}  # pod -> the longest log read while it drained
        self.followers: dict[str, LogFollower] = {}  # pod -> its log's follower
        self.settled_ns: int | None = None

    @property
    def namespace(self) -> str:
        return self.platform.plan.namespace

    def current(self) -> int:
        return len(self.live)

    def scale_to(self, n: int) -> None:
        self.settled_ns = None
        if not self.started:  # the first call creates the Deployment (replicas: the plan's)
            self._name(n)
            settings = self.platform.plan.settings
            if n != self.platform.plan.worker_replicas and not settings.autoscaling.enabled:
                self._replicas(n)
            return
        if n > len(self.live):
            self._replicas(n)
            self._name(n - len(self.live))
        elif n < len(self.live):
            self._remove(self.live[n:])
            self._replicas(n)

    def _name(self, count: int) -> None:
        """New names (the first one's start creates the workers' objects)."""
        for _ in range(count):
            name = f"worker-{len(self.started)}"
            self.platform.start_component(self.launch(name))
            self.live.append(name)
            self.started.append(name)

    def _remove(self, names: list[str]) -> None:
        """The newest names leave: their pods are marked to be deleted first, and held by the
        tracker (stopped on purpose: never a failure, never replaced)."""
        tracker = self.platform.tracker
        for name in reversed(names):
            self.live.remove(name)
            pod = tracker.pod_for(name)
            if pod is None:
                continue
            tracker.component(name).expected.add(pod)
            self.draining[pod] = name
            self._follow_log(pod)
            ref = {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(pod, self.namespace)}
            self.platform.cluster.patch(
                ref, {"metadata": {"annotations": {DELETION_COST: FIRST_OUT}}}
            )

    def _replicas(self, n: int) -> None:
        ref = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(labels.WORKERS, self.namespace),
        }
        self.platform.cluster.patch(ref, {"spec": {"replicas": n}})

    def settled(self, target: int) -> int | None:
        if self.settled_ns is not None:
            return self.settled_ns
        pods = self._pods()
        self._save_draining_logs(pods)
        ready = [p for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
        if len(pods) == target and len(ready) == target:
            self.settled_ns = time.time_ns()
        return self.settled_ns

    def _pods(self) -> list[Manifest]:
        """Every worker pod that is still there, draining ones too, but not killed ones."""
        selector = f"{labels.run_selector(self.platform.run_id)},{labels.COMPONENT}=worker"
        found = self.platform.cluster.list("v1", "Pod", self.namespace, selector)
        killed = self.platform.tracker.components["worker"].killed
        return sorted((p for p in found if p["metadata"]["name"] not in killed), key=started_at)

    def _save_draining_logs(self, pods: list[Manifest]) -> None:
        """The log of each removed pod as long as it is there (its last words: the drain)."""
        there = {p["metadata"]["name"] for p in pods}
        logs = self.platform.run_dir / "logs"
        for pod in list(self.draining):
            if pod not in there:
                del self.draining[pod]
                continue
            if pod in self.followers:  # its log streams into the file until it ends
                continue
            text = self.platform.pods.logs(pod, "worker")
            if len(text) > len(self.logs.get(pod, "")):  # not the kubelet's "unable to ..."
                self.logs[pod] = text
                _write(logs / f"{pod}.log", text)

    def lost(self, name: str) -> None:
        """A worker killed by a fault: the tracker already lowered the Deployment by one."""
        if name in self.live:
            self.live.remove(name)

    def follow(self, n: int) -> None:
        """The cluster's HPA set the replicas to n (called at each of its reads): names for
        the pods it adds; the names of the pods it removes (draining or gone) leave, their
        pods held by the tracker as stopped on purpose, so no name takes another's pod."""
        if n > len(self.live):
            self._name(n - len(self.live))
        elif n < len(self.live):
            self._drop_removed(len(self.live) - n)
        tracker = self.platform.tracker
        for name in self.live:  # each name takes its pod as soon as it runs, so that the
            pod = tracker.pod_names.get(name) or tracker.pod_for(name)  # one the HPA removes
            if pod is not None:  # later is known by name, and its log is followed from now:
                self._follow_log(pod)  # the HPA's pick may drain and go between two reads
        if self.draining:
            self._save_draining_logs(self._pods())

    def _drop_removed(self, count: int) -> None:
        """Up to `count` names whose pods are draining or gone leave, newest first."""
        tracker = self.platform.tracker
        running = {
            p["metadata"]["name"]
            for p in self._pods()
            if not p["metadata"].get("deletionTimestamp")
        }
        for name in reversed(self.live[:]):
            if count <= 0:
                return
            pod = tracker.pod_names.get(name) or tracker.lost.pop(name, None)
            if pod is None or pod in running:
                continue
            tracker.pod_names[name] = pod  # held: stopped on purpose, never remapped
            tracker.component(name).expected.add(pod)
            self.draining[pod] = name
            self._follow_log(pod)
            self.live.remove(name)
            count -= 1

    def stop_all(self) -> None:
        """Every worker finishes its batch and commits (SIGTERM through podwrap, the pod kept
        for its files), newest first; a cluster HPA is deleted first so it scales nothing."""
        if self.platform.plan.settings.autoscaling.enabled:
            self._delete_hpa()
            self._adopt()
        kept = {self.platform.tracker.pod_names.get(name) for name in self.live}
        while self.live:
            self.platform.stop_component(self.live.pop(), timeout=STOP_TIMEOUT_S)
        for pod, follower in self.followers.items():
            if pod in kept:  # kept for its files: the teardown saves its whole log
                follower.stop()
            else:  # removed: its log, written to its end
                follower.join(timeout=STOP_TIMEOUT_S)

    def _follow_log(self, pod: str) -> None:
        if pod not in self.followers:
            log = self.platform.run_dir / "logs" / f"{pod}.log"
            self.followers[pod] = self.platform.pods.follow_log(pod, "worker", log)

    def _delete_hpa(self) -> None:
        ref = {
            "apiVersion": HPA[0],
            "kind": HPA[1],
            "metadata": _meta(labels.WORKERS, self.namespace),
        }
        try:
            self.platform.cluster.delete(ref)
        except ApiError:
            return

    def _adopt(self) -> None:
        """Names for the pods the HPA added and no name holds yet; names whose pod it removed
        leave."""
        tracker = self.platform.tracker
        for name in self.live[:]:
            if tracker.pod_for(name) is None:
                self.live.remove(name)
        held = {tracker.pod_for(name) for name in self.live}
        unnamed = [p for p in tracker.pods_of("worker") if p["metadata"]["name"] not in held]
        self._name(len(unnamed))


def read_hpa(platform: KubernetesPlatform, seen: dict[str, int]) -> HpaStatus | None:
    """The workers' HPA now, and its `SuccessfulRescale` events not in `seen` (uid → count,
    since the API folds a repeated message into one event with a higher count)."""
    cluster, namespace = platform.cluster, platform.plan.namespace
    hpa = cluster.get(*HPA, labels.WORKERS, namespace)
    if hpa is None:
        return None
    state = hpa.get("status") or {}
    deployment = cluster.get("apps/v1", "Deployment", labels.WORKERS, namespace) or {}
    metrics = hpa["spec"].get("metrics") or [{}]
    target = metrics[0].get("resource", {}).get("target", {}).get("averageUtilization", 0)
    return HpaStatus(
        current=int(state.get("currentReplicas") or 0),
        desired=int(state.get("desiredReplicas") or 0),
        ready=int((deployment.get("status") or {}).get("readyReplicas") or 0),
        cpu_percent=_cpu_percent(state),
        target_percent=int(target),
        rescales=tuple(_rescales(platform, seen)),
    )


def _cpu_percent(state: Manifest) -> float | None:
    for metric in state.get("currentMetrics") or []:
        found = (metric.get("resource") or {}).get("current", {}).get("averageUtilization")
        if found is not None:
            return float(found)
    return None


def _rescales(platform: KubernetesPlatform, seen: dict[str, int]) -> list[HpaRescale]:
    selector = f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={labels.WORKERS}"
    try:
        found = platform.cluster.core.list_namespaced_event(
            platform.plan.namespace, field_selector=selector
        ).items
    except Exception:  # noqa: BLE001 - best effort; the next read sees them
        return []
    out = []
    for event in found:
        uid, count = event.metadata.uid, int(event.count or 1)
        match = NEW_SIZE.match(event.message or "")
        if event.reason != "SuccessfulRescale" or match is None or seen.get(uid, 0) >= count:
            continue
        seen[uid] = count
        when = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        out.append(HpaRescale(_ns(when), int(match.group(1)), match.group(2)))
    return sorted(out, key=lambda r: r.time_ns)


def _ns(when: Any) -> int:
    return int(when.timestamp() * 1e9) if isinstance(when, datetime) else time.time_ns()


def _meta(name: str, namespace: str) -> dict[str, str]:
    return {"name": name, "namespace": namespace}


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        return
