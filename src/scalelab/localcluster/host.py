"""Host state the cluster changes, and how each change is undone.

- sysctls: saved once before the first start, restored at `down`
  (ip_forward and bridge-nf-call-iptables are needed for pod→ClusterIP
  traffic; the kubelet sets vm.overcommit_memory, kernel.panic, kernel.panic_on_oops).
- the node address, a /32 on `lo` (this VM has no `dummy` link type).
- iptables guard chains: traffic from or to the cluster's ranges never leaves
  through another interface than the pod bridge or `lo`, and the cluster's
  ports are closed to everything but those two.
- what the kubelet, kube-proxy and CNI leave: KUBE-*/CNI-* chains, the `cni0`
  bridge, `cni-*` network namespaces, mounts under `.cluster/`, kubepods cgroups.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from scalelab.localcluster import layout as L
from scalelab.localcluster.layout import Layout

# Sysctls the cluster (or its kubelet and kube-proxy) may change.
WATCHED_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.conf.all.route_localnet",
)
CLUSTER_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
GUARD_CHAIN = "SCALELAB-GUARD"
INPUT_CHAIN = "SCALELAB-INPUT"
# Chains made by the cluster: the guards, kube-proxy and kubelet (KUBE-*), CNI plugins (CNI-*).
CHAIN_PREFIXES = ("SCALELAB-", "KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


# --- sysctls ---------------------------------------------------------------


def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    """Current values of the watched sysctls that exist on this kernel."""
    values = {}
    for name in WATCHED_SYSCTLS:
        try:
            values[name] = sysctl_path(name).read_text().strip()
        except OSError:
            continue
    return values


def write_sysctl(name: str, value: str) -> None:
    sysctl_path(name).write_text(value + "\n")


def save_sysctls(layout: Layout) -> None:
    """Record the host's values once: a second `up` must not save the cluster's own."""
    if not layout.saved_sysctls.exists():
        layout.saved_sysctls.write_text(json.dumps(read_sysctls(), indent=2) + "\n")


def apply_cluster_sysctls() -> None:
    if not sysctl_path("net.bridge.bridge-nf-call-iptables").exists():
        run("modprobe", "br_netfilter", check=False)
    for name, value in CLUSTER_SYSCTLS.items():
        write_sysctl(name, value)


def changed_sysctls(saved: dict[str, str], current: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Sysctls whose value differs from the saved one: name → (saved, now)."""
    return {k: (v, current[k]) for k, v in saved.items() if k in current and current[k] != v}


def saved_sysctls(layout: Layout) -> dict[str, str]:
    if not layout.saved_sysctls.exists():
        return {}
    return dict(json.loads(layout.saved_sysctls.read_text()))


def restore_sysctls(layout: Layout) -> None:
    """Write back the saved values; the file stays as the baseline `check-clean` compares with."""
    for name, (value, _now) in changed_sysctls(saved_sysctls(layout), read_sysctls()).items():
        write_sysctl(name, value)


# --- node address ------------------------------------------------------------


def node_address_present() -> bool:
    out = run("ip", "-4", "-o", "addr", "show", "dev", "lo").stdout
    return f" {L.NODE_IP}/32 " in out


def add_node_address() -> None:
    if not node_address_present():
        run("ip", "addr", "add", f"{L.NODE_IP}/32", "dev", "lo")


def remove_node_address() -> None:
    if node_address_present():
        run("ip", "addr", "del", f"{L.NODE_IP}/32", "dev", "lo")


# --- iptables ----------------------------------------------------------------


def guard_rules() -> list[list[str]]:
    """Rules of the egress guard (mangle) and the input guard (filter), as iptables argv tails."""
    ranges = (L.POD_CIDR, L.SERVICE_CIDR, f"{L.NODE_IP}/32")
    egress = [
        ["-t", "mangle", "-A", GUARD_CHAIN, "-o", dev, "-j", "RETURN"] for dev in (L.BRIDGE, "lo")
    ]
    for cidr in ranges:
        for flag in ("-s", "-d"):
            egress.append(["-t", "mangle", "-A", GUARD_CHAIN, flag, cidr, "-j", "DROP"])
    ingress = [
        ["-t", "filter", "-A", INPUT_CHAIN, "-i", dev, "-j", "RETURN"] for dev in (L.BRIDGE, "lo")
    ]
    ingress.append(["-t", "filter", "-A", INPUT_CHAIN, "-d", f"{L.NODE_IP}/32", "-j", "DROP"])
    for proto, ports in (("tcp", L.GUARDED_TCP_PORTS), ("udp", L.GUARDED_UDP_PORTS)):
        for port in ports:
            ingress.append(
                ["-t", "filter", "-A", INPUT_CHAIN, "-p", proto, "--dport", port, "-j", "DROP"]
            )
    return egress + ingress


GUARD_JUMPS = (
    ("mangle", "FORWARD", GUARD_CHAIN),
    ("mangle", "POSTROUTING", GUARD_CHAIN),
    ("filter", "INPUT", INPUT_CHAIN),
)


def install_guards() -> None:
    """(Re)write both guard chains and jump to them first in their built-in chains."""
    for table, chain in (("mangle", GUARD_CHAIN), ("filter", INPUT_CHAIN)):
        if run("iptables", "-t", table, "-n", "-L", chain, check=False).returncode != 0:
            run("iptables", "-t", table, "-N", chain)
        run("iptables", "-t", table, "-F", chain)
    for rule in guard_rules():
        run("iptables", *rule)
    for table, builtin, chain in GUARD_JUMPS:
        if run("iptables", "-t", table, "-C", builtin, "-j", chain, check=False).returncode != 0:
            run("iptables", "-t", table, "-I", builtin, "1", "-j", chain)


def cluster_chains(save_output: str) -> dict[str, list[str]]:
    """Per table, the cluster's chains named in `iptables-save` output."""
    chains: dict[str, list[str]] = {}
    table = ""
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if name.startswith(CHAIN_PREFIXES):
                chains.setdefault(table, []).append(name)
    return chains


def jumps_into_cluster_chains(save_output: str) -> list[tuple[str, list[str]]]:
    """`-A` rules of built-in or foreign chains that jump to a cluster chain: (table, argv tail)."""
    found = []
    table = ""
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            parts = line.split()
            owner = parts[1]
            target = parts[parts.index("-j") + 1] if "-j" in parts else ""
            if target.startswith(CHAIN_PREFIXES) and not owner.startswith(CHAIN_PREFIXES):
                found.append((table, parts[1:]))
    return found


def _save(tool: str) -> str:
    result = run(f"{tool}-save", check=False)
    return result.stdout if result.returncode == 0 else ""


def remove_cluster_chains() -> None:
    """Delete the jumps into cluster chains, then flush and delete those chains (IPv4 and IPv6)."""
    for tool in ("iptables", "ip6tables"):
        saved = _save(tool)
        for table, rule in jumps_into_cluster_chains(saved):
            run(tool, "-t", table, "-D", *_unquote(rule), check=False)
        chains = cluster_chains(saved)
        for table, names in chains.items():
            for name in names:
                run(tool, "-t", table, "-F", name, check=False)
        for table, names in chains.items():
            for name in names:
                run(tool, "-t", table, "-X", name, check=False)


def _unquote(parts: list[str]) -> list[str]:
    """iptables-save quotes comments; rejoin quoted words into one argument."""
    out: list[str] = []
    buf: list[str] | None = None
    for part in parts:
        if buf is not None:
            buf.append(part)
            if part.endswith('"'):
                out.append(" ".join(buf)[1:-1])
                buf = None
        elif part.startswith('"') and not (part.endswith('"') and len(part) > 1):
            buf = [part]
        else:
            out.append(
                part[1:-1]
                if part.startswith('"') and part.endswith('"') and len(part) > 1
                else part
            )
    return out


def leftover_chains() -> list[str]:
    names = []
    for tool in ("iptables", "ip6tables"):
        for table, chains in cluster_chains(_save(tool)).items():
            names += [f"{tool} {table} {c}" for c in chains]
    return names


# --- links, namespaces, mounts, cgroups ---------------------------------------


def bridge_present() -> bool:
    return run("ip", "link", "show", L.BRIDGE, check=False).returncode == 0


def remove_bridge() -> None:
    if bridge_present():
        run("ip", "link", "del", L.BRIDGE, check=False)


def cluster_netns(netns_dir: Path = Path("/run/netns")) -> list[Path]:
    """Network namespaces made by the CNI plugins for pod sandboxes (cni-<uuid>)."""
    if not netns_dir.is_dir():
        return []
    return sorted(p for p in netns_dir.iterdir() if p.name.startswith("cni-"))


def remove_netns(paths: list[Path]) -> None:
    for path in paths:
        run("umount", "-l", str(path), check=False)
        path.unlink(missing_ok=True)


def mounts_under(prefixes: tuple[str, ...], mountinfo: str) -> list[str]:
    """Mount points below any of `prefixes` in /proc/self/mountinfo text, deepest first."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
                points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def cluster_mounts(layout: Layout) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    points = mounts_under((str(layout.root),), text)
    points += [p for p in mounts_under(("/run/netns",), text) if Path(p).name.startswith("cni-")]
    return points


def unmount_all(layout: Layout) -> None:
    for point in cluster_mounts(layout):
        if run("umount", point, check=False).returncode != 0:
            run("umount", "-l", point, check=False)


def kubepods_cgroups(root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """The kubelet's `kubepods` cgroup directories in every v1 controller hierarchy."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/kubepods*") if p.is_dir())


def remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup directory bottom-up (cgroupfs directories only go with rmdir)."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError:
            continue


def remove_container_log_links(layout: Layout, links: Path = Path("/var/log/containers")) -> None:
    """The kubelet links every container's log into /var/log/containers; drop ours."""
    if not links.is_dir():
        return
    ours = str(layout.var / "log" / "pods")
    for link in links.iterdir():
        if link.is_symlink() and os.readlink(link).startswith(ours):
            link.unlink()


# containerd 1.6 puts shim sockets, fifos and runc state under /run/containerd whatever
# its configured state directory: remove those directories when they are empty.
SHIM_RUN_DIRS = (
    Path("/run/containerd/s"),
    Path("/run/containerd/fifo"),
    Path("/run/containerd/runc/k8s.io"),
    Path("/run/containerd/runc"),
    Path("/run/containerd"),
)


def remove_empty_shim_dirs(dirs: tuple[Path, ...] = SHIM_RUN_DIRS) -> None:
    for directory in dirs:
        try:
            directory.rmdir()
        except OSError:
            continue


def shim_sockets(directory: Path = SHIM_RUN_DIRS[0]) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def remove_ipam_state(layout: Layout) -> None:
    subprocess.run(["rm", "-rf", str(layout.ipam_dir)], check=False)
