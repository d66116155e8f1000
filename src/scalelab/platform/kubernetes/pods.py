"""What the platform does inside a component's pod: read files, signal podwrap, fetch logs.

All of it goes through the Kubernetes API (exec and log subresources), so
nothing in the pod listens for scalelab. Files travel base64-encoded, since
exec streams are text.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from scalelab.platform.kubernetes.errors import ApiError
from scalelab.platform.kubernetes.podwrap import exit_file

EXEC_TIMEOUT_S = 60.0
_READ = (
    "import base64,sys;sys.stdout.write(base64.b64encode(open(sys.argv[1],'rb').read()).decode())"
)
_SIGNAL = "import os,signal,sys;os.kill(1,getattr(signal,sys.argv[1]))"


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
                self.core.connect_get_namespaced_pod_exec,
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
            raise ApiError(
                "exec in",
                f"pod {self.namespace}/{pod}",
                getattr(error, "status", None),
                str(error).splitlines()[0] if str(error) else type(error).__name__,
            ) from error
        try:
            ws.run_forever(timeout=timeout)
            out = ws.read_stdout()
            code = ws.returncode
        finally:
            ws.close()
        return code, out or ""

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
