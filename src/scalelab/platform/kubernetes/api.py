"""Access to the cluster's API: objects (apply, get, list, watch, delete) and pods (exec,
logs, port-forward), with the official client.

Objects are plain dicts in and out. Applying is server-side apply with
scalelab as field manager; waiting reads the object once and then watches it
until a readiness predicate holds; deleting lists by the run's label and
deletes each object (namespaces have no delete-collection). Inside a pod,
everything goes through the exec and log subresources, so nothing in the pod
listens for scalelab (files travel base64-encoded, since exec streams are
text). A `PortForward` listens on a loopback port of this machine and opens
one API port-forward stream to the pod per connection: nothing is exposed
beyond the user's machine.
"""

from __future__ import annotations

import base64
import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalelab.errors import ComponentError, MissingDependencyError, PortInUseError
from scalelab.platform.kubernetes.errors import ApiError, ClusterUnreachableError
from scalelab.platform.kubernetes.labels import FIELD_MANAGER
from scalelab.platform.kubernetes.manifests import Manifest
from scalelab.platform.kubernetes.podwrap import exit_file
from scalelab.platform.kubernetes.validate import INSTALL_HINT

# -- client -----------------------------------------------------------------
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


# -- pods -------------------------------------------------------------------
EXEC_TIMEOUT_S = 60.0
_READ = (
    "import base64,sys;sys.stdout.write(base64.b64encode(open(sys.argv[1],'rb').read()).decode())"
)
_SIGNAL = "import os,signal,sys;os.kill(1,getattr(signal,sys.argv[1]))"


def streaming(core: Any) -> Any:
    """A CoreV1Api of its own for one exec or port-forward stream.

    `kubernetes.stream` swaps its client's `request` for a websocket call while a
    stream opens: on a shared client, a list or get from another thread (the run's
    health checks, a second port-forward) would go through that websocket and fail
    ("Missing required parameter `ports`"), and interleaved swaps can leave the
    client broken for good. A client per stream shares only the configuration.
    """
    from kubernetes import client

    return client.CoreV1Api(client.ApiClient(core.api_client.configuration))


class PodOps:
    def __init__(self, core: Any, namespace: str):
        self.core = core
        self.namespace = namespace

    def exec(
        self, pod: str, container: str, command: list[str], timeout: float = EXEC_TIMEOUT_S
    ) -> tuple[int | None, str]:
        """Run a command in a container; (exit code, stdout)."""
        from kubernetes.stream import stream

        try:
            ws = stream(
                streaming(self.core).connect_get_namespaced_pod_exec,
                pod,
                self.namespace,
                command=command,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except Exception as error:  # noqa: BLE001 - the pod may be gone or not started
            raise self._exec_error(pod, error) from error
        try:
            ws.run_forever(timeout=timeout)
            out = ws.read_stdout()
            code = ws.returncode  # raises when the container is not there (not started yet)
        except Exception as error:  # noqa: BLE001
            raise self._exec_error(pod, error) from error
        finally:
            ws.close()
        return code, out or ""

    def _exec_error(self, pod: str, error: BaseException) -> ApiError:
        why = str(error).splitlines()[0] if str(error) else type(error).__name__
        return ApiError(
            "exec in", f"pod {self.namespace}/{pod}", getattr(error, "status", None), why
        )

    def read_file(self, pod: str, container: str, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist (yet)."""
        code, out = self.exec(pod, container, ["python", "-c", _READ, path])
        if code != 0:
            return None
        return base64.b64decode(out)

    def copy_file(self, pod: str, container: str, path: str, target: Path) -> bool:
        data = self.read_file(pod, container, path)
        if data is None:
            return False
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return True

    def signal(self, pod: str, container: str, name: str) -> None:
        """Send a signal (SIGUSR1, SIGUSR2, ...) to podwrap, the container's PID 1."""
        self.exec(pod, container, ["python", "-c", _SIGNAL, name])

    def exit_code(self, pod: str, container: str, data_dir: str) -> int | None:
        """The component's exit code once podwrap recorded it."""
        raw = self.read_file(pod, container, exit_file(data_dir))
        return int(raw.decode().strip()) if raw else None

    def logs(
        self, pod: str, container: str, previous: bool = False, tail: int | None = None
    ) -> str:
        try:
            text = self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, previous=previous, tail_lines=tail
            )
        except Exception:  # noqa: BLE001 - no log yet, or no previous container
            return ""
        return str(text)

    def follow_log(self, pod: str, container: str, path: Path) -> LogFollower:
        """Stream a pod's log into `path` until its container ends: the last words of a pod
        that is going away (its drain and exit), which a later read would find gone."""
        follower = LogFollower()

        def copy() -> None:
            while not follower.stopped:
                try:
                    response = self.core.read_namespaced_pod_log(
                        pod,
                        self.namespace,
                        container=container,
                        follow=True,
                        _preload_content=False,
                    )
                except Exception as error:  # noqa: BLE001 - the pod may be gone: no log to keep
                    if getattr(error, "status", None) != NOT_STARTED:
                        return
                    time.sleep(LOG_RETRY_S)  # its container is still being created
                    continue
                with contextlib.suppress(Exception):  # a stream cut short keeps what came
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("wb") as out:
                        for chunk in response.stream(CHUNK):
                            if not follower.write(out, chunk):
                                return
                return

        follower.thread = threading.Thread(target=copy, name=f"log-{pod}", daemon=True)
        follower.thread.start()
        return follower


NOT_STARTED = 400  # the API's answer for a container still waiting to start
LOG_RETRY_S = 0.5


class LogFollower:
    """A pod's log streaming into a file; `stop()` hands the file over for good (the stream
    itself ends only with the container, so the thread is a daemon)."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def write(self, out: Any, chunk: bytes) -> bool:
        with self._lock:
            if self._stopped:
                return False
            out.write(chunk)
            out.flush()
            return True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """No write after this returns: someone else (teardown) may write the file now."""
        with self._lock:
            self._stopped = True

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


# -- portforward ------------------------------------------------------------
Opener = Callable[[], Any]  # returns a connected socket-like object to the pod's port
CHUNK = 64 * 1024


def pod_opener(core: Any, namespace: str, pod: str, port: int) -> Opener:
    """Open one port-forward stream to `pod:port` per call."""

    def open_stream() -> Any:
        from kubernetes.stream import portforward

        forward = portforward(
            streaming(core).connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
        )
        remote = forward.socket(port)
        remote.setblocking(True)
        return remote

    return open_stream


class PortForward:
    """A loopback listener that forwards every connection through `open_remote`."""

    def __init__(self, name: str, open_remote: Opener, local_port: int = 0):
        self.name = name
        self.open_remote = open_remote
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind(("127.0.0.1", local_port))
        except OSError as error:
            self.server.close()
            raise PortInUseError(name, local_port) from error
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.closed = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._accept, name=f"forward-{name}", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                local, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(local,), daemon=True).start()

    def _serve(self, local: socket.socket) -> None:
        try:
            remote = self.open_remote()
        except Exception as error:  # noqa: BLE001 - the pod may be restarting; drop this one
            self.errors.append(f"{self.name}: {error}")
            local.close()
            return
        back = threading.Thread(target=_pump, args=(remote, local), daemon=True)
        back.start()
        _pump(local, remote)
        back.join()
        for end in (local, remote):
            with contextlib.suppress(OSError):
                end.close()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


def _pump(source: Any, target: Any) -> None:
    """Copy until the source ends, then tell the target no more data will come."""
    try:
        while True:
            data = source.recv(CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
