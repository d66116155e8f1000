# A real single-node Kubernetes on this machine (docs/local-cluster.md): binaries built
# from the pinned Go modules in cluster/, state under .cluster/, processes run as root.
# Contract: .cluster/kubeconfig, .cluster/bin/kubectl, .cluster/run/containerd.sock.
CLUSTER_PY := $(BIN)/python -m scalelab.localcluster
# skopeo reads the image archive as a registry tool does (tests/image, docs/images.md).
CLUSTER_DEBS := containerd runc containernetworking-plugins iptables conntrack openssl \
	debootstrap gcc libc6-dev iproute2 kmod skopeo
CLUSTER_SUDO = $$( [ "$$(id -u)" = 0 ] || echo sudo )

.PHONY: cluster cluster-down cluster-status cluster-check-clean cluster-build cluster-deps

cluster: venv cluster-deps cluster-build
	@$(CLUSTER_SUDO) $(CLUSTER_PY) up

cluster-down: venv
	@$(CLUSTER_SUDO) $(CLUSTER_PY) down

cluster-status: venv
	@$(CLUSTER_SUDO) $(CLUSTER_PY) status

cluster-check-clean: venv
	@$(CLUSTER_SUDO) $(CLUSTER_PY) check-clean

# Go builds are skipped when up to date; the first one downloads ~600 MB of modules.
cluster-build: venv
	@PATH="$$PATH:/usr/local/go/bin"; command -v go >/dev/null || { \
		echo "go is missing: install Go >= 1.24 from https://go.dev/dl/ (Debian's golang is too old)"; exit 3; }
	@PATH="$$PATH:/usr/local/go/bin" $(CLUSTER_PY) build

# Debian packages the node needs, installed only when missing.
cluster-deps:
	@missing=""; for p in $(CLUSTER_DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "cluster: installing Debian packages:$$missing"; \
		$(CLUSTER_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		|| { $(CLUSTER_SUDO) apt-get update -qq && $(CLUSTER_SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
		|| { echo "cluster: could not install$$missing (apt-get install$$missing)"; exit 3; }; \
	fi
