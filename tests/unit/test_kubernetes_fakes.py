"""A fake of the `DynamicClient` surface scalelab uses, with a tiny controller, and its own tests.

The fake's methods have exactly the real client's signatures (checked below),
so code that calls a method the real client lacks, or passes an argument it
does not take, fails here as it would on a cluster. The controller does what
the cluster's controllers would for a run: Deployments and Jobs get ready
pods, Strimzi resources get a Ready condition. A Deployment keeps its replica
count as a ReplicaSet does: a deleted pod is replaced (by a Pending pod), and
scaling down removes pods in the ReplicaSet's order (Pending before Running,
not ready before ready, lower `pod-deletion-cost` first, newest first).
"""

from __future__ import annotations

import copy
import inspect
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

kubernetes = pytest.importorskip("kubernetes")

from kubernetes.client.exceptions import ApiException  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError  # noqa: E402

CLUSTER_SCOPED = {"Namespace", "Node"}
KINDS = {
    ("v1", "Namespace"), ("v1", "Node"), ("v1", "Pod"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "Service"), ("apps/v1", "Deployment"), ("batch/v1", "Job"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("kafka.strimzi.io/v1beta2", "Kafka"), ("kafka.strimzi.io/v1beta2", "KafkaNodePool"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("metrics.k8s.io/v1beta1", "PodMetrics"),
}  # fmt: skip
_clock = itertools.count(1)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class FakeResource:
    def __init__(self, api_version: str, kind: str):
        self.api_version = api_version
        self.kind = kind
        self.namespaced = kind not in CLUSTER_SCOPED


class FakeInstance:
    def __init__(self, data: dict[str, Any]):
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


class FakeResources:
    def __init__(self, kinds: set[tuple[str, str]]):
        self.kinds = kinds

    def get(self, **kwargs: Any) -> FakeResource:
        key = (kwargs.get("api_version"), kwargs.get("kind"))
        if key not in self.kinds:
            raise ResourceNotFoundError(f"No matches found for {kwargs}")
        return FakeResource(*key)  # type: ignore[arg-type]


def not_found(name: str) -> NotFoundError:
    return NotFoundError(ApiException(status=404, reason=f"{name} not found"))


def matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=")
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=")
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def pod(
    name: str, namespace: str, labels: dict[str, str], ready: bool = True, container: str = "main"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels),
                     "creationTimestamp": timestamp(next(_clock))},
        "spec": {"containers": [{"name": container}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [{"name": container, "restartCount": 0,
                                          "state": {"running": {}}}]},
    }  # fmt: skip


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """A merge patch: nested dicts merge, None removes a key, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def scale_down_rank(found: dict[str, Any]) -> tuple[Any, ...]:
    """The ReplicaSet's order for removing pods (controller.ActivePodsWithRanks)."""
    status = found["status"]
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )
    cost = int(found["metadata"].get("annotations", {}).get(DELETION_COST, 0))
    created = datetime.strptime(found["metadata"]["creationTimestamp"], TIME_FORMAT)
    return phase, ready, cost, -created.timestamp()


def timestamp(tick: int) -> str:
    """A creation time `tick` seconds into the fake cluster's life (RFC 3339, as the API)."""
    return (EPOCH + timedelta(seconds=tick)).strftime(TIME_FORMAT)


def node(name: str, control_plane: bool = False) -> dict[str, Any]:
    taints = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {}},
        "spec": {"taints": taints if control_plane else []},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


class FakeDynamic:
    """The subset of `DynamicClient` scalelab calls, over an in-memory store."""

    def __init__(self, kinds: set[tuple[str, str]] | None = None, controller: bool = True):
        self.resources = FakeResources(kinds or set(KINDS))
        self.store: dict[tuple[str, str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.delete_bodies: dict[str, dict[str, Any]] = {}
        self.controller = controller

    # -- helpers for tests ----------------------------------------------------------------
    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.store[(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])] = obj

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [
            o for (_, k, _, n), o in self.store.items() if k == kind and (name is None or n == name)
        ]

    # -- the DynamicClient surface (same signatures) ----------------------------------------
    def get(self, resource, name=None, namespace=None, **kwargs):  # type: ignore[no-untyped-def]
        key = (resource.api_version, resource.kind, namespace if resource.namespaced else None)
        if name is not None:
            found = self.store.get((*key, name))
            if found is None:
                raise not_found(name)
            return FakeInstance(found)
        items = [
            o
            for (a, k, ns, _), o in self.store.items()
            if (a, k) == key[:2]
            and (namespace is None or ns == namespace)
            and matches(o["metadata"].get("labels", {}), kwargs.get("label_selector"))
        ]
        return FakeInstance({"kind": f"{resource.kind}List", "items": items})

    def delete(
        self,
        resource,
        name=None,
        namespace=None,
        body=None,
        label_selector=None,  # type: ignore[no-untyped-def]
        field_selector=None,
        **kwargs,
    ):
        key = (
            resource.api_version,
            resource.kind,
            namespace if resource.namespaced else None,
            name,
        )
        self.calls.append(("delete", resource.kind, name))
        self.delete_bodies[name] = dict(body or {})
        removed = self.store.pop(key, None)
        if removed is None:
            raise not_found(name)
        if resource.kind == "Pod" and self.controller:
            self._replace(removed)
        if resource.kind in ("Deployment", "Job"):
            for found in self.find("Pod"):
                if found["metadata"]["labels"].get("owner") == name:
                    self.store.pop(
                        ("v1", "Pod", found["metadata"]["namespace"], found["metadata"]["name"])
                    )
        return FakeInstance({})

    def patch(self, resource, body=None, name=None, namespace=None, **kwargs):  # type: ignore[no-untyped-def]
        target = self.store[
            (resource.api_version, resource.kind, namespace if resource.namespaced else None, name)
        ]
        merge(target, body)
        self.calls.append(("patch", resource.kind, name))
        if resource.kind == "Deployment" and self.controller:
            target["metadata"]["generation"] = target["metadata"].get("generation", 1) + 1
            self._sync_replicas(target)
        return FakeInstance(target)

    def server_side_apply(
        self,
        resource,
        body=None,
        name=None,
        namespace=None,  # type: ignore[no-untyped-def]
        force_conflicts=None,
        **kwargs,
    ):
        assert kwargs.get("field_manager") == "scalelab"
        assert force_conflicts is True
        obj = copy.deepcopy(body)
        obj["metadata"]["generation"] = 1
        self.calls.append(("apply", resource.kind, obj["metadata"]["name"]))
        self.put(obj)
        if self.controller:
            self._reconcile(obj)
        return FakeInstance(obj)

    def watch(
        self,
        resource,
        namespace=None,
        name=None,
        label_selector=None,  # type: ignore[no-untyped-def]
        field_selector=None,
        resource_version=None,
        timeout=None,
        watcher=None,
        allow_watch_bookmarks=None,
        send_initial_events=None,
        resource_version_match=None,
    ) -> Iterator[dict[str, Any]]:
        found = self.store.get(
            (resource.api_version, resource.kind, namespace if resource.namespaced else None, name)
        )
        if found is not None:
            yield {"type": "MODIFIED", "raw_object": copy.deepcopy(found)}

    # -- what the cluster's controllers would do ----------------------------------------------
    def _reconcile(self, obj: dict[str, Any]) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        status = obj.setdefault("status", {})
        if kind == "Namespace":
            status["phase"] = "Active"
        elif kind in ("Kafka", "KafkaTopic"):
            status.update(observedGeneration=1, conditions=[{"type": "Ready", "status": "True"}])
            if kind == "Kafka":
                labels = {"strimzi.io/cluster": meta["name"], **meta["labels"]}
                self.put(
                    pod(f"{meta['name']}-kafka-0", meta["namespace"], labels, container="kafka")
                )
        elif kind == "Deployment":
            self._sync_replicas(obj)
        elif kind == "Job":
            self._start_pod(obj, ready=True)
            status.update(active=1, ready=1)

    def owned_pods(self, owner: str) -> list[dict[str, Any]]:
        return [p for p in self.find("Pod") if p["metadata"]["labels"].get("owner") == owner]

    def _start_pod(self, owner: dict[str, Any], ready: bool) -> None:
        """A pod from the owner's template; a replacement starts Pending, as on a cluster."""
        template = owner["spec"]["template"]
        labels = {**template["metadata"]["labels"], "owner": owner["metadata"]["name"]}
        container = template["spec"]["containers"][0]["name"]
        name = f"{owner['metadata']['name']}-{next(_clock):04d}"
        started = pod(name, owner["metadata"]["namespace"], labels, ready, container)
        if not ready:
            started["status"].update(phase="Pending", containerStatuses=[])
        self.put(started)

    def _sync_replicas(self, deployment: dict[str, Any], initial: bool = True) -> None:
        """A ReplicaSet's work: start or remove pods until the count is the spec's."""
        wanted = deployment["spec"].get("replicas", 1)
        owned = self.owned_pods(deployment["metadata"]["name"])
        for _ in range(wanted - len(owned)):
            self._start_pod(deployment, ready=initial)
        for victim in sorted(owned, key=scale_down_rank)[: max(0, len(owned) - wanted)]:
            self.store.pop(
                ("v1", "Pod", victim["metadata"]["namespace"], victim["metadata"]["name"])
            )
        ready = sum(
            1
            for p in self.owned_pods(deployment["metadata"]["name"])
            if p["status"]["phase"] == "Running"
        )
        deployment["status"] = dict(
            observedGeneration=deployment["metadata"].get("generation", 1),
            replicas=wanted,
            updatedReplicas=wanted,
            availableReplicas=ready,
        )

    def _replace(self, removed: dict[str, Any]) -> None:
        """A Deployment's pod deleted: its ReplicaSet starts another at once."""
        owner = removed["metadata"].get("labels", {}).get("owner")
        found = self.store.get(("apps/v1", "Deployment", removed["metadata"]["namespace"], owner))
        if found is not None:
            self._sync_replicas(found, initial=False)


def test_fake_has_the_real_signatures() -> None:
    for name in ("get", "delete", "patch", "server_side_apply", "watch"):
        real = list(inspect.signature(getattr(DynamicClient, name)).parameters)
        fake = list(inspect.signature(getattr(FakeDynamic, name)).parameters)
        assert fake == real, name


def test_fake_selects_by_labels() -> None:
    fake = FakeDynamic()
    fake.put(pod("a", "ns", {"x": "1", "y": "2"}))
    fake.put(pod("b", "ns", {"x": "2"}))
    resource = fake.resources.get(api_version="v1", kind="Pod")

    def names(selector: str) -> list[str]:
        found = fake.get(resource, namespace="ns", label_selector=selector).data["items"]
        return [o["metadata"]["name"] for o in found]

    assert names("x=1") == ["a"]
    assert names("x,x!=1") == ["b"]
    assert names("y") == ["a"]
    with pytest.raises(NotFoundError):
        fake.get(resource, name="c", namespace="ns")
    with pytest.raises(ResourceNotFoundError):
        fake.resources.get(api_version="v9", kind="Nope")
