"""A real single-node Kubernetes built from the project's own files.

`python -m scalelab.localcluster build|up|down|status|check-clean` builds the pinned
binaries (cluster/), writes certificates and configs under `<repo>/.cluster/`, runs
etcd, the control plane, containerd, the kubelet, kube-proxy, CoreDNS and
metrics-server as host processes, and takes all of it down again without a trace.
Nothing here is imported by the rest of scalelab: it is set-up tooling.
"""
