"""Where the local cluster keeps its files, and the addresses it uses.

Everything lives under `<repo>/.cluster/` (gitignored). The paths named in the
team contract (kubeconfig, kubectl, containerd socket) must not move.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scalelab.paths import PROJECT_ROOT

NODE_NAME = "scalelab-node"
NODE_IP = "10.88.88.1"
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
BRIDGE = "cni0"
APISERVER_PORT = 6443
METRICS_SERVER_PORT = 4443
KUBERNETES_VERSION = "v1.34.4"
PAUSE_IMAGE = "scalelab.local/pause:3.10"
CONTAINERD_NAMESPACE = "k8s.io"
# Ports the INPUT guard keeps closed to anything but loopback and the pod bridge.
GUARDED_TCP_PORTS = ("2379:2381", "6443", "4443", "9153", "10248:10260", "53")
GUARDED_UDP_PORTS = ("53",)


@dataclass(frozen=True)
class Layout:
    """The directory tree of one local cluster."""

    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(
            Path(os.environ.get("SCALELAB_CLUSTER_DIR", PROJECT_ROOT / ".cluster")).resolve()
        )

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kubectl(self) -> Path:
        return self.bin / "kubectl"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def saved_sysctls(self) -> Path:
        return self.root / "saved-sysctls.json"

    @property
    def kubelet_root(self) -> Path:
        return self.var / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.etc / "cni" / "net.d"

    @property
    def ipam_dir(self) -> Path:
        return self.var / "cni" / "networks"

    def kubeconfig_for(self, user: str) -> Path:
        return self.etc / f"{user}.kubeconfig"

    def binary(self, name: str) -> Path:
        return self.bin / name
