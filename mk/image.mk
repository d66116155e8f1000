# The scalelab component image (defined once, in image/image.toml): a docker-archive
# written by image/build.py from a debootstrap root filesystem, without Docker or a
# registry, then imported into the local cluster's containerd when that cluster runs.
# docs/images.md: loading it into k3s or kind, or pushing it with skopeo.
IMAGE_TAR := build/image/scalelab-image.tar
IMAGE_CONTAINERD := $(CURDIR)/.cluster/run/containerd.sock

.PHONY: image image-import

image: venv cluster-deps
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO $(BIN)/python image/build.py --output $(IMAGE_TAR)
	@$(MAKE) --no-print-directory image-import

# Import into the local cluster (make cluster), when its containerd is running. The old tag
# goes first: re-importing over it can fail with "parent snapshot ... does not exist".
image-import:
	@if [ ! -S $(IMAGE_CONTAINERD) ]; then \
		echo "image: no local cluster running ($(IMAGE_CONTAINERD)): not imported"; \
	else \
		CTR=$$(command -v ctr || echo .cluster/bin/ctr); \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		TAG=$$($(BIN)/python -c 'import scalelab; print("scalelab.local/scalelab:" + scalelab.__version__)'); \
		$$SUDO $$CTR --address $(IMAGE_CONTAINERD) -n k8s.io images rm $$TAG >/dev/null 2>&1 || true; \
		$$SUDO $$CTR --address $(IMAGE_CONTAINERD) -n k8s.io images import $(IMAGE_TAR) && \
		echo "image: imported into the local cluster (containerd namespace k8s.io)"; \
	fi
