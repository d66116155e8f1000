"""The cluster's host processes: their command lines, and starting/stopping them by pid.

Each process writes its log to `.cluster/logs/<name>.log` and its pid to
`.cluster/run/pids/<name>.pid`. A pid is only signalled when its command line
still names the binary under `.cluster/bin` (or containerd with our config), so
a recycled pid is never killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scalelab.localcluster import layout as L
from scalelab.localcluster.certs import Pki
from scalelab.localcluster.layout import Layout

NO_PROXY = ",".join(
    [
        "127.0.0.1",
        "localhost",
        L.NODE_IP,
        L.POD_CIDR,
        L.SERVICE_CIDR,
        ".svc",
        f".{L.CLUSTER_DOMAIN}",
    ]
)
# Node processes get a dead proxy, so nothing they fetch can leave the machine.
DEAD_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class ProcessSpec:
    """One host process: name, argv, and the string its /proc cmdline must contain."""

    name: str
    argv: tuple[str, ...]

    @property
    def marker(self) -> str:
        return self.argv[0]


def node_environment() -> dict[str, str]:
    """The environment of every cluster process: a dead proxy for anything not local."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        NO_PROXY=NO_PROXY,
        no_proxy=NO_PROXY,
        PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )
    return env


def process_specs(layout: Layout, pki: Pki) -> list[ProcessSpec]:
    """Every process, in start order."""
    b, e, p = layout.binary, layout.etc, pki
    kc = layout.kubeconfig_for
    return [
        ProcessSpec(
            "etcd",
            (
                str(b("etcd")),
                "--name=scalelab",
                f"--data-dir={layout.var / 'etcd'}",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=scalelab=http://127.0.0.1:2380",
                "--listen-metrics-urls=http://127.0.0.1:2381",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--snapshot-count=10000",
            ),
        ),
        ProcessSpec(
            "kube-apiserver",
            (
                str(b("kube-apiserver")),
                "--etcd-servers=http://127.0.0.1:2379",
                "--bind-address=0.0.0.0",
                f"--secure-port={L.APISERVER_PORT}",
                f"--advertise-address={L.NODE_IP}",
                f"--service-cluster-ip-range={L.SERVICE_CIDR}",
                f"--client-ca-file={p.cert('ca')}",
                f"--tls-cert-file={p.cert('apiserver')}",
                f"--tls-private-key-file={p.key('apiserver')}",
                f"--kubelet-client-certificate={p.cert('apiserver-kubelet-client')}",
                f"--kubelet-client-key={p.key('apiserver-kubelet-client')}",
                f"--kubelet-certificate-authority={p.cert('ca')}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-issuer=https://kubernetes.default.svc.{L.CLUSTER_DOMAIN}",
                f"--service-account-key-file={layout.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={p.key('sa')}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--profiling=false",
                f"--requestheader-client-ca-file={p.cert('front-proxy-ca')}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={p.cert('front-proxy-client')}",
                f"--proxy-client-key-file={p.key('front-proxy-client')}",
                "--enable-aggregator-routing=true",
            ),
        ),
        ProcessSpec(
            "kube-controller-manager",
            (
                str(b("kube-controller-manager")),
                f"--kubeconfig={kc('controller-manager')}",
                f"--authentication-kubeconfig={kc('controller-manager')}",
                f"--authorization-kubeconfig={kc('controller-manager')}",
                "--bind-address=127.0.0.1",
                "--secure-port=10257",
                "--leader-elect=false",
                f"--service-account-private-key-file={p.key('sa')}",
                f"--root-ca-file={p.cert('ca')}",
                f"--cluster-signing-cert-file={p.cert('ca')}",
                f"--cluster-signing-key-file={p.key('ca')}",
                "--use-service-account-credentials=true",
                "--allocate-node-cidrs=false",
                f"--service-cluster-ip-range={L.SERVICE_CIDR}",
                "--cluster-name=scalelab",
                "--profiling=false",
            ),
        ),
        ProcessSpec(
            "kube-scheduler",
            (
                str(b("kube-scheduler")),
                f"--config={e / 'scheduler.json'}",
                f"--authentication-kubeconfig={kc('scheduler')}",
                f"--authorization-kubeconfig={kc('scheduler')}",
                "--bind-address=127.0.0.1",
                "--secure-port=10259",
                "--profiling=false",
            ),
        ),
        ProcessSpec("containerd", ("/usr/bin/containerd", f"--config={e / 'containerd.toml'}")),
        ProcessSpec(
            "kubelet",
            (
                str(b("kubelet")),
                f"--config={e / 'kubelet.json'}",
                f"--kubeconfig={kc('kubelet')}",
                f"--hostname-override={L.NODE_NAME}",
                f"--node-ip={L.NODE_IP}",
                f"--root-dir={layout.kubelet_root}",
                f"--cert-dir={layout.pki / 'kubelet-certs'}",
                "--v=1",
            ),
        ),
        ProcessSpec("kube-proxy", (str(b("kube-proxy")), f"--config={e / 'kube-proxy.json'}")),
        ProcessSpec("coredns", (str(b("coredns")), "-conf", str(e / "Corefile"))),
        ProcessSpec(
            "metrics-server",
            (
                str(b("metrics-server")),
                f"--kubeconfig={kc('metrics-server')}",
                f"--authentication-kubeconfig={kc('metrics-server')}",
                f"--authorization-kubeconfig={kc('metrics-server')}",
                f"--bind-address={L.NODE_IP}",
                f"--secure-port={L.METRICS_SERVER_PORT}",
                f"--tls-cert-file={p.cert('metrics-server')}",
                f"--tls-private-key-file={p.key('metrics-server')}",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                f"--kubelet-certificate-authority={p.cert('ca')}",
                "--metric-resolution=15s",
            ),
        ),
    ]


def pid_file(layout: Layout, name: str) -> Path:
    return layout.pids / f"{name}.pid"


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def running_pid(layout: Layout, spec: ProcessSpec) -> int | None:
    """The pid of `spec` if its pid file names a live process that is still ours."""
    try:
        pid = int(pid_file(layout, spec.name).read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _cmdline(pid)
    ours = cmd.startswith(spec.marker) and (spec.name != "containerd" or str(layout.etc) in cmd)
    return pid if ours and not _is_zombie(pid) else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def start(layout: Layout, spec: ProcessSpec) -> int:
    """Start `spec` unless it already runs; return its pid."""
    pid = running_pid(layout, spec)
    if pid is not None:
        return pid
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.pids.mkdir(parents=True, exist_ok=True)
    with open(layout.logs / f"{spec.name}.log", "ab") as log:
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=node_environment(),
            cwd=layout.root,
            start_new_session=True,
        )
    pid_file(layout, spec.name).write_text(f"{proc.pid}\n")
    return proc.pid


def stop(layout: Layout, spec: ProcessSpec, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True when something was stopped."""
    pid = running_pid(layout, spec)
    if pid is None:
        pid_file(layout, spec.name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(layout, spec) == pid:
        time.sleep(0.2)
    if running_pid(layout, spec) == pid:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    pid_file(layout, spec.name).unlink(missing_ok=True)
    return True


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (containerd shims of our socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and int(entry.name) != os.getpid()
            and text in _cmdline(int(entry.name))
        ):
            found.append(int(entry.name))
    return found
