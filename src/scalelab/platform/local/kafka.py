"""A single-node Apache Kafka broker in KRaft mode, started with `java` from the pinned jars."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from scalelab.errors import ComponentError, MissingDependencyError
from scalelab.paths import kafka_lib_dir
from scalelab.platform.process import ProcessSpec, tail

INSTALL_HINT = "run `make kafka` (fetches the pinned jars from Maven Central with mvn)"
JMX_RULES = Path(__file__).with_name("kafka-jmx.yaml")


@dataclass(frozen=True)
class BrokerPorts:
    client: int
    controller: int
    metrics: int


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError("java", "install OpenJDK 17+ (apt-get install openjdk-17-jre)")
    return java


def kafka_jars() -> Path:
    lib = kafka_lib_dir()
    if not list(lib.glob("kafka_2.13-*.jar")):
        raise MissingDependencyError(f"Kafka jars in {lib}", INSTALL_HINT)
    return lib


def kafka_version(lib: Path | None = None) -> str:
    jars = sorted((lib or kafka_lib_dir()).glob("kafka_2.13-*.jar"))
    return jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown"


def jmx_agent(lib: Path) -> Path:
    agents = sorted(lib.glob("jmx_prometheus_javaagent-*.jar"))
    if not agents:
        raise MissingDependencyError(f"JMX exporter agent in {lib}", INSTALL_HINT)
    return agents[-1]


def server_properties(
    ports: BrokerPorts, data_dir: Path, retention_s: float, advertised: int | None = None
) -> str:
    """KRaft combined broker+controller on loopback, sized for one machine.

    `advertised`: the port clients are told to use (a fault-injecting proxy in front of
    the listener), else the listener's own port."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ports.controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{ports.client},CONTROLLER://127.0.0.1:{ports.controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{advertised or ports.client}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.ms": str(int(retention_s * 1000)),
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(16 * 1024 * 1024),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def format_storage(config: Path, data_dir: Path, log_path: Path) -> None:
    """Format the KRaft log directory once (a no-op when it is already formatted)."""
    if (data_dir / "meta.properties").exists():
        return
    lib = kafka_jars()
    # A short-lived tool: the C1 compiler and the serial collector start it faster.
    argv = [java_binary(), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    argv += ["-cp", f"{lib}/*", "kafka.tools.StorageTool", "format"]
    # `=` form: a random id may start with '-', which argparse would take for an option.
    argv += [f"--cluster-id={_cluster_id()}", "-c", str(config), "--standalone"]
    argv += ["--ignore-formatted"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        raise ComponentError("broker", "formatting the KRaft storage failed", tail(log_path))


def _cluster_id() -> str:
    """Kafka cluster ids are 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def broker_process(
    ports: BrokerPorts,
    work_dir: Path,
    data_dir: Path,
    heap_mb: int,
    retention_s: float,
    log: Path,
    advertised: int | None = None,
) -> ProcessSpec:
    """Write the config, format storage if needed, and describe the broker's java process.

    `work_dir` belongs to this run alone (two runs must never share server.properties).
    """
    lib = kafka_jars()
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "server.properties"
    config.write_text(server_properties(ports, data_dir, retention_s, advertised))
    format_storage(config, data_dir, log)
    agent = f"-javaagent:{jmx_agent(lib)}=127.0.0.1:{ports.metrics}:{JMX_RULES}"
    argv = [java_binary(), f"-Xms{min(256, heap_mb)}m", f"-Xmx{heap_mb}m"]
    argv += ["-XX:+UseG1GC", "-Djava.awt.headless=true", agent]
    argv += ["-cp", f"{lib}/*", "kafka.Kafka", str(config)]
    return ProcessSpec(
        name="broker",
        argv=argv,
        log_path=log,
        ports={"client": ports.client, "controller": ports.controller, "metrics": ports.metrics},
        death_signal=signal.SIGTERM,  # a clean shutdown keeps `reuse` storage consistent
    )
