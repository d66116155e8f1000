"""Port-forwards through the Kubernetes API (`kubernetes.stream.portforward`), bound to 127.0.0.1.

A `PortForward` listens on a loopback port of this machine; each connection
it accepts opens its own port-forward stream to the pod and copies bytes both
ways. Nothing is exposed beyond the user's machine.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from scalelab.errors import PortInUseError

Opener = Callable[[], Any]  # returns a connected socket-like object to the pod's port
CHUNK = 64 * 1024


def pod_opener(core: Any, namespace: str, pod: str, port: int) -> Opener:
    """Open one port-forward stream to `pod:port` per call."""

    def open_stream() -> Any:
        from kubernetes.stream import portforward

        forward = portforward(
            core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
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
