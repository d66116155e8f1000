"""Config files of the cluster's processes, rendered as text (pure: no I/O here).

Every setting that was a blocker on these machines is here with its reason
(see docs/local-cluster.md): cgroupfs on cgroup v1, containerd's
`restrict_oom_score_adj`, registry hosts sent to a dead local endpoint, a CNI
bridge without masquerade or default route.
"""

from __future__ import annotations

import json

from scalelab.localcluster import layout as L
from scalelab.localcluster.certs import Pki
from scalelab.localcluster.layout import Layout

# A pull of a missing image must fail at once, without a DNS lookup of a registry.
DEAD_REGISTRY = "http://127.0.0.1:10"


def kubeconfig(pki: Pki, user: str, cert: str, server: str) -> str:
    """A kubeconfig with client-certificate auth (JSON is valid YAML)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "scalelab-local",
                "cluster": {"server": server, "certificate-authority": str(pki.cert("ca"))},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki.cert(cert)),
                    "client-key": str(pki.key(cert)),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": "scalelab-local", "user": user}}],
        "current-context": user,
    }
    return json.dumps(doc, indent=2) + "\n"


def apiserver_url(host: str = "127.0.0.1") -> str:
    return f"https://{host}:{L.APISERVER_PORT}"


def kubelet_config(layout: Layout, pki: Pki) -> str:
    """KubeletConfiguration: cgroupfs on cgroup v1, swap tolerated, webhook auth only."""
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": L.NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "memorySwap": {},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.cert("ca"))},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki.cert("kubelet-serving")),
        "tlsPrivateKeyFile": str(pki.key("kubelet-serving")),
        "clusterDomain": L.CLUSTER_DOMAIN,
        "clusterDNS": [L.DNS_SERVICE_IP],
        "resolvConf": str(layout.etc / "resolv.conf"),
        "staticPodPath": "",
        "podLogsDir": str(layout.var / "log" / "pods"),
        "podCIDR": L.POD_CIDR,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "evictionPressureTransitionPeriod": "10s",
        "enforceNodeAllocatable": ["pods"],
        "cgroupsPerQOS": True,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "maxPods": 110,
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": True,
    }
    return json.dumps(doc, indent=2) + "\n"


def kube_proxy_config(layout: Layout) -> str:
    """KubeProxyConfiguration in iptables mode.

    `localhostNodePorts: false` keeps kube-proxy from setting route_localnet;
    `maxPerCore: 0` leaves the host's conntrack table size alone.
    """
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig_for("kube-proxy"))},
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clusterCIDR": L.POD_CIDR,
        "hostnameOverride": L.NODE_NAME,
        "nodePortAddresses": [f"{L.NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "syncPeriod": "30s"},
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    return json.dumps(doc, indent=2) + "\n"


def scheduler_config(layout: Layout) -> str:
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig_for("scheduler"))},
        "leaderElection": {"leaderElect": False},
    }
    return json.dumps(doc, indent=2) + "\n"


def containerd_config(layout: Layout) -> str:
    """containerd 1.6 CRI config: everything under .cluster/, no registry reachable.

    `restrict_oom_score_adj`: the VM drops CAP_SYS_RESOURCE, and runc fails on
    the kubelet's -998 score for sandboxes without it.
    """
    state = layout.run / "containerd"
    return f"""version = 2
root = "{layout.var / "containerd"}"
state = "{state}"
oom_score = 0

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.run / "containerd.ttrpc.sock"}"

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{L.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{layout.etc / "containerd" / "certs.d"}"
"""


def registry_hosts() -> str:
    """`certs.d/_default/hosts.toml`: every registry host goes to a dead local port."""
    return (
        f'server = "{DEAD_REGISTRY}"\n\n'
        f'[host."{DEAD_REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n'
    )


def cni_conflist(layout: Layout) -> str:
    """Bridge network: no masquerade, no default route (pods reach services and the node only)."""
    doc = {
        "cniVersion": "0.4.0",
        "name": "scalelab",
        "plugins": [
            {
                "type": "bridge",
                "bridge": L.BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.ipam_dir),
                    "ranges": [[{"subnet": L.POD_CIDR, "gateway": L.POD_GATEWAY}]],
                    "routes": [{"dst": L.SERVICE_CIDR}, {"dst": f"{L.NODE_IP}/32"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": False},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def corefile(layout: Layout) -> str:
    """CoreDNS answers for the cluster domain only: there is no `forward` plugin."""
    return f""".:53 {{
    bind {L.NODE_IP}
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes {L.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {layout.kubeconfig_for("coredns")} coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    prometheus {L.NODE_IP}:9153
    cache 30
    loadbalance
}}
"""


def pod_resolv_conf() -> str:
    """The resolv.conf the kubelet copies into `dnsPolicy: Default` pods: cluster DNS only."""
    return f"nameserver {L.DNS_SERVICE_IP}\n"


def addon_manifests(pki_ca_b64: str) -> str:
    """kube-dns and metrics-server Services pointing at host processes, and the APIService.

    The Services have no selector: their Endpoints name the node address, where
    CoreDNS and metrics-server listen as host processes.
    """
    ns = "kube-system"
    labels = {"scalelab.io/local-cluster": "addon"}
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": ns,
                "labels": {**labels, "k8s-app": "kube-dns"},
            },
            "spec": {
                "clusterIP": L.DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "kube-dns",
                "namespace": ns,
                "labels": {**labels, "k8s-app": "kube-dns"},
            },
            "subsets": [
                {
                    "addresses": [{"ip": L.NODE_IP}],
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                        {"name": "metrics", "port": 9153, "protocol": "TCP"},
                    ],
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": ns, "labels": labels},
            "spec": {
                "ports": [
                    {
                        "name": "https",
                        "port": 443,
                        "protocol": "TCP",
                        "targetPort": L.METRICS_SERVER_PORT,
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "metrics-server", "namespace": ns, "labels": labels},
            "subsets": [
                {
                    "addresses": [{"ip": L.NODE_IP}],
                    "ports": [{"name": "https", "port": L.METRICS_SERVER_PORT, "protocol": "TCP"}],
                }
            ],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": labels},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": "metrics-server", "namespace": ns, "port": 443},
                "caBundle": pki_ca_b64,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2) + "\n"
