"""A fake of the `DynamicClient` surface scalelab uses, with a tiny controller, and its own tests.

The fake's methods have exactly the real client's signatures (checked below),
so code that calls a method the real client lacks, or passes an argument it
does not take, fails here as it would on a cluster. The controller does what
the cluster's controllers would for a run: Deployments and Jobs get ready
pods, Strimzi resources get a Ready condition.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from collections.abc import Iterator
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
                     "creationTimestamp": f"2026-01-01T00:00:{next(_clock):02d}Z"},
        "spec": {"containers": [{"name": container}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [{"name": container, "restartCount": 0,
                                          "state": {"running": {}}}]},
    }  # fmt: skip


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
        if self.store.pop(key, None) is None:
            raise not_found(name)
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
        labels = target["metadata"].setdefault("labels", {})
        for key, value in body["metadata"]["labels"].items():
            labels.pop(key, None) if value is None else labels.__setitem__(key, value)
        self.calls.append(("patch", resource.kind, name))
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
        elif kind in ("Deployment", "Job"):
            count = obj["spec"].get("replicas", 1)
            template = obj["spec"]["template"]
            container = template["spec"]["containers"][0]["name"]
            for _ in range(count):
                labels = {**template["metadata"]["labels"], "owner": meta["name"]}
                self.put(
                    pod(
                        f"{meta['name']}-{next(_clock):04d}",
                        meta["namespace"],
                        labels,
                        container=container,
                    )
                )
            if kind == "Deployment":
                status.update(
                    observedGeneration=1,
                    replicas=count,
                    updatedReplicas=count,
                    availableReplicas=count,
                )
            else:
                status["ready"] = 1


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
