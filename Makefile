# scalelab: every set-up step a fresh Debian 12 machine needs, idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_STAMP := kafka/lib/.fetched

.PHONY: setup venv kafka prometheus browser demo test lint unit clean reset

setup: venv kafka prometheus flink

venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,kubernetes]'
	@touch $(STAMP)

# Apache Kafka (KRaft) and the Prometheus JMX exporter agent, pinned in kafka/pom.xml.
kafka: $(KAFKA_STAMP)
$(KAFKA_STAMP): kafka/pom.xml
	@command -v java >/dev/null || { echo "java is missing: apt-get install openjdk-17-jre-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn is missing: apt-get install maven"; exit 1; }
	rm -rf kafka/lib
	cd kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	@touch $(KAFKA_STAMP)

# Prometheus and the node exporter from Debian's packages, only when missing.
prometheus:
	@if command -v prometheus >/dev/null && command -v prometheus-node-exporter >/dev/null; then \
		echo "prometheus and prometheus-node-exporter: already installed"; \
	else \
		echo "installing Debian packages prometheus and prometheus-node-exporter (scalelab starts them itself, bound to 127.0.0.1)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-node-exporter >/dev/null; \
		$$SUDO systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true; \
	fi

# Debian's Chromium, for the test that opens a report in a real browser.
browser:
	@if command -v chromium >/dev/null; then echo "chromium: already installed"; else \
		echo "installing Debian package chromium (headless browser for the report test)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

demo: setup
	$(BIN)/scalelab run examples/quickstart.yaml

# Everything but the cluster tests first; then the cluster phase (mk/test-cluster.sh: the
# image, the real single-node cluster, the tests marked `cluster`, the cluster down again).
# SCALELAB_CLUSTER_TESTS=0 leaves the cluster phase out.
test: setup browser
	@rc=0; $(BIN)/pytest -q -p no:cacheprovider -m "not cluster" --durations=15 tests || rc=$$?; \
	MAKE="$(MAKE)" bash mk/test-cluster.sh || { [ $$rc = 0 ] && rc=1; }; exit $$rc

unit: venv
	$(BIN)/pytest -q tests/unit

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

reset: venv
	$(BIN)/scalelab reset

clean:
	rm -rf $(VENV) kafka/lib flink/lib flink/target build/image .scalelab .pytest_cache .mypy_cache .ruff_cache

# Subsystem targets (cluster, image, flink, ...) live in mk/*.mk.
include $(wildcard mk/*.mk)
