# syntax=docker/dockerfile:1
# The scalelab component image for `platform: kubernetes`: producer, workers and tracker.
#
#   docker build -t REGISTRY/scalelab:0.1.0 .
#   docker push REGISTRY/scalelab:0.1.0        (then platform.kubernetes.image in the spec)
#
# The built-in demo models (the real YOLOv8 architecture, random weights) are built offline
# into /opt/scalelab/models/<name>.onnx. For your own model, either mount it
# (platform.kubernetes.model_pvc) or bake it into a derived image:
#   FROM REGISTRY/scalelab:0.1.0
#   COPY --chown=10001:10001 my-model.onnx /opt/scalelab/models/my-model.onnx
# and set platform.kubernetes.model_path: /opt/scalelab/models/my-model.onnx.
# The image runs as user 10001, never root, and needs no writable root filesystem
# (the pods mount /data and /tmp).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .
ARG MODELS="yolov8n"
RUN mkdir -p /opt/scalelab/models \
 && for model in ${MODELS}; do \
      /opt/venv/bin/scalelab model build "${model}" --output "/opt/scalelab/models/${model}.onnx"; \
    done

FROM python:${PYTHON_VERSION}-slim-bookworm
RUN groupadd --gid 10001 scalelab \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin scalelab
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/scalelab/models /opt/scalelab/models
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /tmp
# The manifests run `python -m scalelab.platform.kubernetes.podwrap --data /data -- python -m
# scalelab.components.<name> ...`; by hand the image is the scalelab CLI.
CMD ["scalelab", "--help"]
