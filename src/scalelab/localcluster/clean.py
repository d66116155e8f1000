"""`check-clean`: what the cluster left on the host, named one by one.

After `down` nothing may remain: no cluster process (by pid file or by command
line), no containerd shim of our socket, no `cni0` or `cni-*` namespace, no node
address on `lo`, no cluster iptables chain, no sysctl different from the saved
host value, no mount under `.cluster/`, no kubepods cgroup.
"""

from __future__ import annotations

import os
from pathlib import Path

from scalelab.localcluster import host
from scalelab.localcluster import layout as L
from scalelab.localcluster.layout import Layout


def cluster_process_lines(layout: Layout, cmdlines: dict[int, str]) -> list[str]:
    """Processes (pid → command line) of the cluster: its binaries, containerd, shims."""
    bins = str(layout.bin) + "/"
    found = []
    for pid, cmd in sorted(cmdlines.items()):
        argv0 = cmd.split(" ", 1)[0]
        ours = (
            argv0.startswith(bins)
            or (argv0.endswith("/containerd") and str(layout.etc) in cmd)
            or (argv0.endswith("containerd-shim-runc-v2") and str(layout.containerd_socket) in cmd)
        )
        if ours:
            found.append(f"process {pid}: {cmd[:160]}")
    return found


def _all_cmdlines() -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                out[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return out


def leftovers(layout: Layout) -> list[str]:
    """Everything the cluster left behind; empty when the host is clean."""
    found = cluster_process_lines(layout, _all_cmdlines())
    found += (
        [f"pid file {p}" for p in sorted(layout.pids.glob("*.pid"))] if layout.pids.is_dir() else []
    )
    if host.bridge_present():
        found.append(f"interface {L.BRIDGE}")
    found += [f"network namespace {p}" for p in host.cluster_netns()]
    if host.node_address_present():
        found.append(f"address {L.NODE_IP}/32 on lo")
    found += [f"iptables chain {c}" for c in host.leftover_chains()]
    for name, (saved, now) in host.changed_sysctls(
        host.saved_sysctls(layout), host.read_sysctls()
    ).items():
        found.append(f"sysctl {name} = {now} (was {saved})")
    found += [f"mount {m}" for m in host.cluster_mounts(layout)]
    found += [f"containerd shim socket {s}" for s in host.shim_sockets()]
    found += [f"cgroup {c}" for c in host.kubepods_cgroups()]
    if layout.kubeconfig.exists():
        found.append(f"kubeconfig {layout.kubeconfig}")
    return found
