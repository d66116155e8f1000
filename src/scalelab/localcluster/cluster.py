"""`up`, `down` and `status` of the local cluster.

`up` is idempotent: it writes what changed, starts what does not run and waits
until each part answers for real (etcd health, apiserver readyz, node Ready,
DNS answering through the kube-dns ClusterIP, the metrics API). `down` stops
everything by pid and undoes every host change (see host.py), then wipes the
cluster's data so the next `up` starts fresh; imported images are kept.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from scalelab.errors import MissingDependencyError, ScalelabError
from scalelab.localcluster import config, host, probes
from scalelab.localcluster import layout as L
from scalelab.localcluster import processes as P
from scalelab.localcluster.build import build_pause
from scalelab.localcluster.certs import Pki, ensure_pki
from scalelab.localcluster.layout import Layout

Say = Callable[[str], None]
GO_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "coredns",
    "metrics-server",
)
HOST_TOOLS = {
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "conntrack": "conntrack",
    "openssl": "openssl",
    "ip": "iproute2",
}
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")


class ClusterError(ScalelabError):
    """The cluster did not come up (or down); `log` names the log to read."""

    def __init__(self, message: str, log: Path | None = None):
        self.log = log
        super().__init__(message + (f" (see {log})" if log else ""))


class NotRootError(ScalelabError):
    exit_code = 3

    def __init__(self) -> None:
        super().__init__(
            "the local cluster changes the host's network and mounts: run it as root (sudo)"
        )


def check_prerequisites(layout: Layout) -> None:
    """Root, the Debian packages and the built binaries; each missing one named with its fix."""
    if os.geteuid() != 0:
        raise NotRootError()
    for tool, package in HOST_TOOLS.items():
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            raise MissingDependencyError(tool, f"apt-get install {package} (or run `make cluster`)")
    for plugin in CNI_PLUGINS:
        if not Path("/usr/lib/cni", plugin).exists():
            raise MissingDependencyError(
                f"CNI plugin {plugin}", "apt-get install containernetworking-plugins"
            )
    for binary in GO_BINARIES:
        if not layout.binary(binary).exists():
            raise MissingDependencyError(
                str(layout.binary(binary)), "run `make cluster` (it builds the binaries)"
            )


def write_if_changed(path: Path, text: str) -> bool:
    """Replace `path` only when its text changes: kube-proxy exits when its config is rewritten."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def write_configs(layout: Layout, pki: Pki) -> None:
    e = layout.etc
    server = config.apiserver_url()
    for user, cert in (
        ("admin", "admin"),
        ("controller-manager", "controller-manager"),
        ("scheduler", "scheduler"),
        ("kubelet", "kubelet"),
        ("kube-proxy", "kube-proxy"),
        ("coredns", "coredns"),
        ("metrics-server", "metrics-server-client"),
    ):
        write_if_changed(layout.kubeconfig_for(user), config.kubeconfig(pki, user, cert, server))
    write_if_changed(e / "kubelet.json", config.kubelet_config(layout, pki))
    write_if_changed(e / "kube-proxy.json", config.kube_proxy_config(layout))
    write_if_changed(e / "scheduler.json", config.scheduler_config(layout))
    write_if_changed(e / "containerd.toml", config.containerd_config(layout))
    write_if_changed(
        e / "containerd" / "certs.d" / "_default" / "hosts.toml", config.registry_hosts()
    )
    write_if_changed(layout.cni_conf_dir / "10-scalelab.conflist", config.cni_conflist(layout))
    write_if_changed(e / "Corefile", config.corefile(layout))
    write_if_changed(e / "resolv.conf", config.pod_resolv_conf())
    ca_b64 = base64.b64encode(pki.cert("ca").read_bytes()).decode()
    write_if_changed(e / "addons.json", config.addon_manifests(ca_b64))


def kubectl(
    layout: Layout, *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [
        str(layout.kubectl),
        f"--kubeconfig={layout.kubeconfig_for('admin')}",
        "--request-timeout=20s",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def ctr(layout: Layout, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [
        "ctr",
        f"--address={layout.containerd_socket}",
        f"--namespace={L.CONTAINERD_NAMESPACE}",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None
) -> float:
    """Poll `ready` until true; seconds it took. Raises ClusterError naming `what` on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ready():
            return time.monotonic() - started
        time.sleep(0.5)
    raise ClusterError(f"{what} not ready after {timeout:.0f} s", log)


def _spec(layout: Layout, pki: Pki, name: str) -> P.ProcessSpec:
    return next(s for s in P.process_specs(layout, pki) if s.name == name)


def any_running(layout: Layout, pki: Pki) -> list[str]:
    return [s.name for s in P.process_specs(layout, pki) if P.running_pid(layout, s) is not None]


def node_ready(layout: Layout) -> bool:
    result = kubectl(layout, "get", "node", L.NODE_NAME, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def dns_answers(name: str = f"kubernetes.default.svc.{L.CLUSTER_DOMAIN}") -> bool:
    """True when the kube-dns ClusterIP (kube-proxy, then CoreDNS) answers with the API's IP."""
    try:
        rcode, addresses = probes.resolve(L.DNS_SERVICE_IP, name)
    except (OSError, ValueError):
        return False
    return rcode == 0 and L.KUBERNETES_SERVICE_IP in addresses


def metrics_available(layout: Layout) -> bool:
    result = kubectl(layout, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
    return result.returncode == 0 and L.NODE_NAME in result.stdout


def ensure_pause_image(layout: Layout, say: Say) -> None:
    listed = ctr(layout, "images", "ls", "-q")
    if L.PAUSE_IMAGE in listed.stdout.split():
        return
    tarball = build_pause(layout, say)
    result = ctr(layout, "images", "import", str(tarball))
    if result.returncode != 0:
        raise ClusterError(f"importing the pause image failed: {result.stderr.strip()}")
    say(f"pause image {L.PAUSE_IMAGE} imported")


def _start(layout: Layout, pki: Pki, name: str, say: Say) -> None:
    spec = _spec(layout, pki, name)
    was = P.running_pid(layout, spec)
    pid = P.start(layout, spec)
    if was is None:
        say(f"{name}: started (pid {pid})")


def _log(layout: Layout, name: str) -> Path:
    return layout.logs / f"{name}.log"


def up(layout: Layout, say: Say) -> float:
    """Bring the whole cluster up (or finish bringing it up); seconds it took."""
    started = time.monotonic()
    check_prerequisites(layout)
    for d in (layout.run, layout.logs, layout.etc, layout.var, layout.pids):
        d.mkdir(parents=True, exist_ok=True)
    pki = Pki(layout.pki)
    ensure_pki(pki)
    write_configs(layout, pki)
    if not any_running(layout, pki):
        layout.saved_sysctls.unlink(missing_ok=True)
    host.save_sysctls(layout)
    host.apply_cluster_sysctls()
    host.add_node_address()
    host.install_guards()

    _start(layout, pki, "etcd", say)
    wait_for(
        "etcd",
        lambda: probes.http_get("http://127.0.0.1:2379/health")[0] == 200,
        60,
        _log(layout, "etcd"),
    )
    _start(layout, pki, "kube-apiserver", say)
    api = config.apiserver_url()
    wait_for(
        "kube-apiserver",
        lambda: probes.https_get(f"{api}/readyz", pki)[0] == 200,
        180,
        _log(layout, "kube-apiserver"),
    )
    _start(layout, pki, "kube-controller-manager", say)
    _start(layout, pki, "kube-scheduler", say)
    apply = kubectl(layout, "apply", "-f", str(layout.etc / "addons.json"), check=False)
    if apply.returncode != 0:
        raise ClusterError(f"applying the add-on Services failed: {apply.stderr.strip()}")

    _start(layout, pki, "containerd", say)
    wait_for(
        "containerd", lambda: ctr(layout, "version").returncode == 0, 60, _log(layout, "containerd")
    )
    ensure_pause_image(layout, say)
    _start(layout, pki, "kubelet", say)
    wait_for("node Ready", lambda: node_ready(layout), 180, _log(layout, "kubelet"))
    for name in ("kube-proxy", "coredns", "metrics-server"):
        _start(layout, pki, name, say)
    wait_for("DNS through the kube-dns Service", dns_answers, 120, _log(layout, "coredns"))
    wait_for("metrics API", lambda: metrics_available(layout), 180, _log(layout, "metrics-server"))
    write_if_changed(layout.kubeconfig, layout.kubeconfig_for("admin").read_text())
    return time.monotonic() - started


def stop_workloads(layout: Layout, pki: Pki, say: Say) -> None:
    """Kill and delete every container of the k8s.io namespace while containerd still runs."""
    if P.running_pid(layout, _spec(layout, pki, "containerd")) is None:
        return
    tasks = ctr(layout, "tasks", "ls", "-q").stdout.split()
    for task in tasks:
        ctr(layout, "tasks", "kill", "-s", "SIGKILL", "--all", task)
    for task in tasks:
        for _ in range(20):
            if ctr(layout, "tasks", "delete", task).returncode == 0:
                break
            time.sleep(0.25)
    containers = ctr(layout, "containers", "ls", "-q").stdout.split()
    for container in containers:
        ctr(layout, "containers", "delete", container)
    if tasks or containers:
        say(f"workloads: {len(tasks)} tasks killed, {len(containers)} containers deleted")


def kill_shims(layout: Layout) -> None:
    """containerd shims of our socket outlive containerd: stop them by pid."""
    for pid in P.pids_mentioning(str(layout.containerd_socket)):
        cmd = (
            Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if Path(f"/proc/{pid}").exists()
            else b""
        )
        if cmd.endswith(b"containerd-shim-runc-v2"):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                continue


def down(layout: Layout, say: Say) -> float:
    """Stop everything and undo every host change; seconds it took."""
    if os.geteuid() != 0:
        raise NotRootError()
    started = time.monotonic()
    pki = Pki(layout.pki)
    layout.kubeconfig.unlink(missing_ok=True)
    for name in ("metrics-server", "coredns", "kube-proxy", "kubelet"):
        if P.stop(layout, _spec(layout, pki, name)):
            say(f"{name}: stopped")
    stop_workloads(layout, pki, say)
    for name in (
        "containerd",
        "kube-scheduler",
        "kube-controller-manager",
        "kube-apiserver",
        "etcd",
    ):
        if P.stop(layout, _spec(layout, pki, name)):
            say(f"{name}: stopped")
    kill_shims(layout)
    undo_host_changes(layout)
    return time.monotonic() - started


def undo_host_changes(layout: Layout) -> None:
    host.remove_netns(host.cluster_netns())
    host.unmount_all(layout)
    host.remove_bridge()
    host.remove_ipam_state(layout)
    host.remove_container_log_links(layout)
    host.remove_empty_shim_dirs()
    for cgroup in host.kubepods_cgroups():
        host.remove_cgroup_tree(cgroup)
    host.remove_cluster_chains()
    subprocess.run(["conntrack", "-D", "-s", L.POD_CIDR], capture_output=True, check=False)
    host.restore_sysctls(layout)
    host.remove_node_address()
    if host.cluster_mounts(layout):
        return  # never delete through a mount that is still there; check-clean names it
    for data in (
        layout.var / "etcd",
        layout.kubelet_root,
        layout.run / "containerd",
        layout.var / "log",
    ):
        shutil.rmtree(data, ignore_errors=True)


def status(layout: Layout) -> dict[str, object]:
    """What runs (name → pid or None) and whether the node and its add-ons answer."""
    pki = Pki(layout.pki)
    procs = {s.name: P.running_pid(layout, s) for s in P.process_specs(layout, pki)}
    up_ = all(procs.values()) and layout.kubeconfig.exists()
    return {
        "processes": procs,
        "kubeconfig": str(layout.kubeconfig) if layout.kubeconfig.exists() else None,
        "node_ready": up_ and node_ready(layout),
        "dns": up_ and dns_answers(),
        "metrics_api": up_ and metrics_available(layout),
    }
