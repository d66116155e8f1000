"""The cluster's rendered configs keep the settings that were blockers on these machines."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from scalelab.localcluster import config, host, probes
from scalelab.localcluster import layout as L
from scalelab.localcluster.build import docker_archive
from scalelab.localcluster.certs import CertSpec, Pki, extensions
from scalelab.localcluster.clean import cluster_process_lines
from scalelab.localcluster.cluster import write_if_changed
from scalelab.localcluster.layout import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / ".cluster")


def test_kubelet_runs_on_cgroup_v1_with_webhook_auth_only(layout: Layout) -> None:
    doc = json.loads(config.kubelet_config(layout, Pki(layout.pki)))
    assert doc["cgroupDriver"] == "cgroupfs"
    assert doc["failCgroupV1"] is False and doc["failSwapOn"] is False
    assert doc["authentication"]["anonymous"]["enabled"] is False
    assert doc["authentication"]["webhook"]["enabled"] is True
    assert doc["authorization"]["mode"] == "Webhook"
    assert doc["containerRuntimeEndpoint"] == f"unix://{layout.root}/run/containerd.sock"
    assert doc["clusterDNS"] == [L.DNS_SERVICE_IP]


def test_containerd_restricts_oom_score_and_never_reaches_a_registry(layout: Layout) -> None:
    text = config.containerd_config(layout)
    assert "restrict_oom_score_adj = true" in text
    assert f'sandbox_image = "{L.PAUSE_IMAGE}"' in text
    assert f'address = "{layout.root}/run/containerd.sock"' in text
    assert f'config_path = "{layout.etc}/containerd/certs.d"' in text
    assert 'server = "http://127.0.0.1:10"' in config.registry_hosts()


def test_pod_network_has_no_masquerade_and_no_default_route(layout: Layout) -> None:
    bridge = json.loads(config.cni_conflist(layout))["plugins"][0]
    assert bridge["ipMasq"] is False
    routes = [r["dst"] for r in bridge["ipam"]["routes"]]
    assert "0.0.0.0/0" not in routes
    assert set(routes) == {L.SERVICE_CIDR, f"{L.NODE_IP}/32"}


def test_coredns_has_no_forward_and_answers_only_on_the_node_address(layout: Layout) -> None:
    text = config.corefile(layout)
    assert not [line for line in text.splitlines() if line.split()[:1] == ["forward"]]
    assert f"bind {L.NODE_IP}" in text
    main_go = (Path(__file__).parents[2] / "cluster" / "coredns" / "main.go").read_text()
    assert "plugin/forward" not in main_go


def test_addons_point_kube_dns_and_metrics_at_the_node() -> None:
    items = json.loads(config.addon_manifests("Q0E="))["items"]
    by_kind = {(i["kind"], i["metadata"]["name"]): i for i in items}
    assert by_kind[("Service", "kube-dns")]["spec"]["clusterIP"] == L.DNS_SERVICE_IP
    assert by_kind[("Endpoints", "kube-dns")]["subsets"][0]["addresses"] == [{"ip": L.NODE_IP}]
    api = by_kind[("APIService", "v1beta1.metrics.k8s.io")]["spec"]
    assert api["caBundle"] == "Q0E=" and api["service"]["name"] == "metrics-server"


def test_kube_proxy_leaves_route_localnet_and_conntrack_alone(layout: Layout) -> None:
    doc = json.loads(config.kube_proxy_config(layout))
    assert doc["mode"] == "iptables"
    assert doc["iptables"]["localhostNodePorts"] is False
    assert doc["conntrack"]["maxPerCore"] == 0


def test_certificate_extensions_name_uses_and_addresses() -> None:
    spec = CertSpec(
        "x", "cn", server=True, client=True, dns_names=("a",), ip_addresses=("10.0.0.1",)
    )
    text = extensions(spec)
    assert "extendedKeyUsage = serverAuth, clientAuth" in text
    assert "subjectAltName = DNS:a, IP:10.0.0.1" in text
    assert "subjectAltName" not in extensions(CertSpec("y", "cn", client=True))
    assert CertSpec("z", "u", "system:masters").subject == "/O=system:masters/CN=u"


def test_write_if_changed_keeps_an_identical_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "kube-proxy.json"
    assert write_if_changed(path, "a") is True
    inode = path.stat().st_ino
    assert write_if_changed(path, "a") is False
    assert path.stat().st_ino == inode
    assert write_if_changed(path, "b") is True and path.read_text() == "b"


SAVE = """*mangle
:PREROUTING ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:SCALELAB-GUARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A FORWARD -j SCALELAB-GUARD
-A SCALELAB-GUARD -o cni0 -j RETURN
COMMIT
*nat
:OUTPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:DOCKER - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j DOCKER
COMMIT
"""


def test_iptables_cleanup_finds_only_cluster_chains_and_their_jumps() -> None:
    assert host.cluster_chains(SAVE) == {
        "mangle": ["SCALELAB-GUARD", "KUBE-KUBELET-CANARY"],
        "nat": ["KUBE-SERVICES"],
    }
    jumps = host.jumps_into_cluster_chains(SAVE)
    assert jumps[0] == ("mangle", ["FORWARD", "-j", "SCALELAB-GUARD"])
    table, rule = jumps[1]
    assert table == "nat"
    assert host._unquote(rule) == [
        "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES",
    ]  # fmt: skip
    assert len(jumps) == 2


def test_guard_drops_cluster_ranges_everywhere_but_bridge_and_lo() -> None:
    rules = [" ".join(r) for r in host.guard_rules()]
    assert rules[0] == f"-t mangle -A {host.GUARD_CHAIN} -o cni0 -j RETURN"
    assert rules[1] == f"-t mangle -A {host.GUARD_CHAIN} -o lo -j RETURN"
    for cidr in (L.POD_CIDR, L.SERVICE_CIDR):
        assert f"-t mangle -A {host.GUARD_CHAIN} -s {cidr} -j DROP" in rules
        assert f"-t mangle -A {host.GUARD_CHAIN} -d {cidr} -j DROP" in rules
    assert f"-t filter -A {host.INPUT_CHAIN} -p tcp --dport 6443 -j DROP" in rules


def test_mounts_under_lists_deepest_first_and_ignores_siblings() -> None:
    info = "\n".join(
        f"36 35 0:1 / {p} rw - tmpfs tmpfs rw"
        for p in (
            "/w/.cluster/var/kubelet",
            "/w/.cluster/var/kubelet/pods/x/vol",
            "/w/.clusterx",
            "/",
        )
    )
    assert host.mounts_under(("/w/.cluster",), info) == [
        "/w/.cluster/var/kubelet/pods/x/vol",
        "/w/.cluster/var/kubelet",
    ]


def test_changed_sysctls_names_saved_and_current_value() -> None:
    saved = {"net.ipv4.ip_forward": "0", "kernel.panic": "1", "gone": "1"}
    now = {"net.ipv4.ip_forward": "1", "kernel.panic": "1"}
    assert host.changed_sysctls(saved, now) == {"net.ipv4.ip_forward": ("0", "1")}


def test_leftover_processes_are_the_clusters_only(layout: Layout) -> None:
    cmds = {
        10: f"{layout.bin}/kubelet --config=x",
        11: f"/usr/bin/containerd --config={layout.etc}/containerd.toml",
        12: f"/usr/bin/containerd-shim-runc-v2 -id a -address {layout.root}/run/containerd.sock",
        13: "/usr/bin/containerd --config=/etc/containerd/config.toml",
        14: f"/usr/bin/ctr --address {layout.root}/run/containerd.sock images import x.tar",
        15: "vim kubelet.json",
    }
    found = cluster_process_lines(layout, cmds)
    assert [line.split(":")[0] for line in found] == ["process 10", "process 11", "process 12"]


def test_dns_query_and_answer_round_trip() -> None:
    query = probes.dns_query_packet("kubernetes.default.svc.cluster.local", 0x1234)
    answer = (
        b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
        + query[12:]
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x60\x00\x01"
    )
    assert probes.parse_a_records(answer, 0x1234) == (0, ["10.96.0.1"])
    with pytest.raises(ValueError):
        probes.parse_a_records(answer, 0x4321)


def test_pause_image_archive_is_a_loadable_docker_archive() -> None:
    data = docker_archive(b"\x7fELF-pause", L.PAUSE_IMAGE, ["/pause"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        entry = manifest[0]
        assert entry["RepoTags"] == [L.PAUSE_IMAGE]
        cfg = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    import hashlib

    assert cfg["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        member = inner.getmember("pause")
        assert member.mode == 0o755
        assert inner.extractfile(member).read() == b"\x7fELF-pause"  # type: ignore[union-attr]
    assert docker_archive(b"\x7fELF-pause", L.PAUSE_IMAGE, ["/pause"]) == data
