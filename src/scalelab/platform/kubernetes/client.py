"""Apply, read, wait for and delete objects with the official client (dynamic client, SSA).

Objects are plain dicts in and out. Applying is server-side apply with
scalelab as field manager; waiting reads the object once and then watches
it until a readiness predicate holds; deleting lists by the run's label and
deletes each object (namespaces have no delete-collection).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from scalelab.errors import ComponentError, MissingDependencyError
from scalelab.platform.kubernetes.errors import ApiError, ClusterUnreachableError
from scalelab.platform.kubernetes.labels import FIELD_MANAGER
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.validate import INSTALL_HINT

Ready = Callable[[Manifest], bool]
WATCH_CHUNK_S = 30


def describe(obj: Manifest) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


class Cluster:
    """One cluster, through a `DynamicClient` (objects) and a `CoreV1Api` (exec, logs, forward)."""

    def __init__(self, dynamic: Any, core: Any, server: str = ""):
        self.dynamic = dynamic
        self.core = core
        self.server = server

    # -- discovery ------------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def has_kind(self, api_version: str, kind: str) -> bool:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            self.resource(api_version, kind)
        except ResourceNotFoundError:
            return False
        return True

    # -- objects --------------------------------------------------------------------------
    def apply(self, obj: Manifest) -> Manifest:
        """Server-side apply; conflicts with other managers are taken over (scalelab owns it)."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace")
        try:
            result = self.dynamic.server_side_apply(
                resource,
                body=obj,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except Exception as error:  # noqa: BLE001 - any API failure becomes an ApiError
            raise _api_error("apply", describe(obj), error) from error
        return dict(result.to_dict())

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            found = self.dynamic.get(
                self.resource(api_version, kind), name=name, namespace=namespace
            )
        except NotFoundError:
            return None
        return dict(found.to_dict())

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str
    ) -> list[Manifest]:
        try:
            found = self.dynamic.get(
                self.resource(api_version, kind), namespace=namespace, label_selector=label_selector
            )
        except Exception as error:  # noqa: BLE001
            raise _api_error("list", f"{kind} {namespace or ''} {label_selector}", error) from error
        return [dict(item) for item in found.to_dict().get("items", [])]

    def patch(self, obj: Manifest, body: Manifest) -> Manifest:
        """Strategic-merge patch of a field scalelab changes during a run (a replica count)."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            result = self.dynamic.patch(
                resource,
                body=body,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
            )
        except Exception as error:  # noqa: BLE001 - any API failure becomes an ApiError
            raise _api_error("patch", describe(obj), error) from error
        return dict(result.to_dict())

    def delete(self, obj: Manifest, grace_seconds: int | None = None) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        meta = obj["metadata"]
        try:
            self.dynamic.delete(
                self.resource(obj["apiVersion"], obj["kind"]),
                name=meta["name"],
                namespace=meta.get("namespace"),
                body=body,
            )
        except NotFoundError:
            return
        except Exception as error:  # noqa: BLE001
            raise _api_error("delete", describe(obj), error) from error

    def delete_labelled(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str
    ) -> int:
        """Delete every object of a kind carrying the label; returns how many were there."""
        if not self.has_kind(api_version, kind):
            return 0
        found = self.list(api_version, kind, namespace, label_selector)
        for obj in found:
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind)
            self.delete(obj)
        return len(found)

    def wait_gone(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str,
        timeout: float,
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.has_kind(api_version, kind):
            left = self.list(api_version, kind, namespace, label_selector)
            if not left:
                return
            if time.monotonic() > deadline:
                names = ", ".join(describe({**o, "kind": kind}) for o in left)
                raise ComponentError("teardown", f"still present after {timeout:g} s: {names}")
            time.sleep(1.0)

    # -- waiting --------------------------------------------------------------------------
    def wait_for(
        self, obj: Manifest, ready: Ready, timeout: float, check: Callable[[], None] | None = None
    ) -> Manifest:
        """Return the object once `ready` holds: read it, then watch it until the deadline."""
        meta = obj["metadata"]
        resource = self.resource(obj["apiVersion"], obj["kind"])
        deadline = time.monotonic() + timeout
        current = self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        while not (current and ready(current)):
            if check:
                check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise ComponentError(
                    describe(obj), f"not ready after {timeout:g} s: {_status_summary(current)}"
                )
            current = self._watch_until(resource, meta, ready, min(left, WATCH_CHUNK_S)) or current
        return current

    def _watch_until(
        self, resource: Any, meta: Manifest, ready: Ready, seconds: float
    ) -> Manifest | None:
        """Watch one object for a while; the last state seen (ready or not)."""
        last = None
        for event in self.dynamic.watch(
            resource,
            namespace=meta.get("namespace"),
            name=meta["name"],
            timeout=max(1, math.ceil(seconds)),
        ):
            last = dict(event["raw_object"])
            if event["type"] != "DELETED" and ready(last):
                return last
        return last


def connect(kubeconfig: str | None, context: str | None, timeout: float = 5.0) -> Cluster:
    """A client for the configured cluster; raises ClusterUnreachableError when none answers."""
    try:
        from kubernetes import client, config
        from kubernetes.dynamic import DynamicClient
    except ImportError as error:
        raise MissingDependencyError("the kubernetes Python client", INSTALL_HINT) from error
    where = kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
    try:
        api = config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False
        )
    except (config.ConfigException, OSError, ValueError) as error:
        raise ClusterUnreachableError(where, f"cannot load it: {error}") from error
    server = api.configuration.host
    try:
        client.VersionApi(api).get_code(_request_timeout=timeout)
        dynamic = DynamicClient(api)
    except Exception as error:  # noqa: BLE001 - connection refused, TLS, auth, timeouts
        raise ClusterUnreachableError(server, _short(error)) from error
    return Cluster(dynamic, client.CoreV1Api(api), server)


def _short(error: BaseException) -> str:
    text = getattr(error, "reason", None) or str(error)
    return str(text).splitlines()[0][:300]


def _api_error(action: str, what: str, error: BaseException) -> ApiError:
    summary = getattr(error, "summary", None)
    reason = summary() if callable(summary) else _short(error)
    return ApiError(action, what, getattr(error, "status", None), str(reason))


def _status_summary(obj: Manifest | None) -> str:
    if obj is None:
        return "it does not exist"
    status = obj.get("status") or {}
    conditions = [
        f"{c.get('type')}={c.get('status')} {c.get('message', '')}".strip()
        for c in status.get("conditions", [])
    ]
    return "; ".join(conditions) or str({k: v for k, v in status.items() if k != "conditions"})
