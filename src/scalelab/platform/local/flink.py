"""A Flink session cluster (JobManager, TaskManagers) started with `java` from the pinned jars.

There is no flink-dist on Maven Central, so `make flink` fetches the module jars into
flink/lib and scalelab computes what Flink's `bin/` scripts would: the configuration file
(every memory component set explicitly, as a standalone TaskManager requires) and the JVM
flags that follow from it. Every endpoint is bound to 127.0.0.1: REST, RPC, blob, data
ports, and metrics, which go through Flink's JMX reporter to the same
`jmx_prometheus_javaagent` the broker uses (Flink's own Prometheus reporter listens on
every interface).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path, PurePath

from scalelab.errors import MissingDependencyError
from scalelab.paths import PROJECT_ROOT
from scalelab.platform.local.kafka import java_binary, jmx_agent, kafka_jars
from scalelab.platform.process import ProcessSpec
from scalelab.spec.models import FlinkWorkload

INSTALL_HINT = "run `make flink` (fetches the pinned Flink jars with mvn and builds the jobs)"
JMX_RULES = Path(__file__).with_name("flink-jmx.yaml")
ENTRYPOINT = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASKMANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
# Fixed parts of the memory model, in MiB (Flink's defaults, trimmed for one machine).
TM_FRAMEWORK_HEAP = 64
TM_FRAMEWORK_OFF_HEAP = 64
TM_NETWORK = 64
TM_MANAGED = 32
METASPACE = 192
OVERHEAD = 64
JM_OFF_HEAP = 64
# What Flink's default config passes every JVM (module access its serializers need).
JAVA_OPENS = [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    *(
        f"--add-opens=java.base/{package}=ALL-UNNAMED"
        for package in (
            "java.lang",
            "java.net",
            "java.io",
            "java.nio",
            "sun.nio.ch",
            "java.lang.reflect",
            "java.text",
            "java.time",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.concurrent.locks",
        )
    ),
]


@dataclass(frozen=True)
class FlinkPorts:
    rest: int
    rpc: int
    blob: int
    metrics: int  # the JobManager's JMX exporter; each TaskManager gets its own


def flink_lib_dir() -> Path:
    return Path(os.environ.get("SCALELAB_FLINK_LIB", PROJECT_ROOT / "flink" / "lib"))


def jobs_jar() -> Path:
    """scalelab's own jobs (frames, join), built by `make flink`."""
    default = PROJECT_ROOT / "flink" / "target" / "scalelab-flink-jobs.jar"
    jar = Path(os.environ.get("SCALELAB_FLINK_JOBS", default))
    if not jar.is_file():
        raise MissingDependencyError(f"scalelab's Flink jobs jar {jar}", INSTALL_HINT)
    return jar


def flink_jars() -> Path:
    lib = flink_lib_dir()
    if not list(lib.glob("flink-runtime-*.jar")):
        raise MissingDependencyError(f"Flink jars in {lib}", INSTALL_HINT)
    return lib


def flink_version(lib: Path | None = None) -> str:
    jars = sorted((lib or flink_lib_dir()).glob("flink-runtime-[0-9]*.jar"))
    return jars[0].stem.removeprefix("flink-runtime-") if jars else "unknown"


def flink_config(ports: FlinkPorts, workload: FlinkWorkload, data_dir: Path) -> dict[str, str]:
    """The cluster's config.yaml: loopback everywhere, explicit memory, adaptive scheduler."""
    return {**loopback_network(ports), **cluster_config(workload, data_dir)}


def loopback_network(ports: FlinkPorts) -> dict[str, str]:
    """Every address and bind address on 127.0.0.1; TaskManager ports chosen by the OS."""
    return {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": str(ports.rpc),
        "jobmanager.bind-host": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(ports.rest),
        "blob.server.port": str(ports.blob),
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.rpc.port": "0",
        "taskmanager.data.port": "0",
        "metrics.internal.query-service.port": "0",
    }


def cluster_config(workload: FlinkWorkload, data_dir: PurePath) -> dict[str, str]:
    """What every platform's Flink cluster shares: slots, the memory model, the adaptive
    scheduler, restarts, heartbeats, state and the JMX reporter (no addresses)."""
    return {
        "taskmanager.numberOfTaskSlots": str(workload.slots_per_taskmanager),
        "taskmanager.cpu.cores": str(float(workload.slots_per_taskmanager)),
        "jobmanager.memory.heap.size": f"{workload.jobmanager_heap_mb}m",
        "jobmanager.memory.off-heap.size": f"{JM_OFF_HEAP}m",
        "jobmanager.memory.jvm-metaspace.size": f"{METASPACE}m",
        "jobmanager.memory.jvm-overhead.min": f"{OVERHEAD}m",
        "jobmanager.memory.jvm-overhead.max": f"{OVERHEAD}m",
        "taskmanager.memory.framework.heap.size": f"{TM_FRAMEWORK_HEAP}m",
        "taskmanager.memory.task.heap.size": f"{workload.taskmanager_heap_mb}m",
        "taskmanager.memory.framework.off-heap.size": f"{TM_FRAMEWORK_OFF_HEAP}m",
        "taskmanager.memory.task.off-heap.size": "0m",
        "taskmanager.memory.network.min": f"{TM_NETWORK}m",
        "taskmanager.memory.network.max": f"{TM_NETWORK}m",
        "taskmanager.memory.managed.size": f"{TM_MANAGED}m",
        "taskmanager.memory.jvm-metaspace.size": f"{METASPACE}m",
        "taskmanager.memory.jvm-overhead.min": f"{OVERHEAD}m",
        "taskmanager.memory.jvm-overhead.max": f"{OVERHEAD}m",
        "jobmanager.scheduler": "adaptive",
        "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": (
            f"{int(workload.rescale_cooldown * 1000)}ms"
        ),
        "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "1s",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000",
        "restart-strategy.fixed-delay.delay": "1s",
        "heartbeat.interval": "2000",
        "heartbeat.timeout": "10000",
        "state.backend.type": "hashmap",
        "execution.checkpointing.dir": (data_dir / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (data_dir / "savepoints").as_uri(),
        "io.tmp.dirs": str(data_dir / "tmp"),
        "web.tmpdir": str(data_dir / "web"),
        "web.upload.dir": str(data_dir / "web"),
        "blob.storage.directory": str(data_dir / "blobs"),
        "metrics.reporter.jmx.factory.class": "org.apache.flink.metrics.jmx.JMXReporterFactory",
        "metrics.latency.interval": "0",
        "web.submit.enable": "true",
    }


def config_yaml(settings: dict[str, str]) -> str:
    """Flink 2 reads `config.yaml` (standard YAML; JSON strings are valid YAML scalars)."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def write_config(config_dir: Path, settings: dict[str, str]) -> Path:
    """Flink 2 reads `config.yaml` (standard YAML; JSON strings are valid YAML scalars)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.yaml").write_text(config_yaml(settings))
    (config_dir / "log4j.properties").write_text(LOG4J)
    return config_dir


LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = Console
appender.console.name = Console
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}{UTC} %-5p %c{1} - %m%n
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
"""


def jvm_options(log4j: str, agent: str) -> list[str]:
    """Flags every Flink JVM gets after its memory flags: G1, headless, the module access
    Flink needs, the log4j file and the JMX exporter agent (`<jar>=<[host:]port>:<rules>`)."""
    return [
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        *JAVA_OPENS,
        f"-Dlog4j.configurationFile={log4j}",
        f"-javaagent:{agent}",
    ]


def jobmanager_memory(workload: FlinkWorkload) -> list[str]:
    """The JVM memory flags Flink's scripts derive from the JobManager's memory model."""
    heap = workload.jobmanager_heap_mb
    return [
        f"-Xmx{heap}m",
        f"-Xms{heap}m",
        f"-XX:MaxDirectMemorySize={JM_OFF_HEAP}m",
        f"-XX:MaxMetaspaceSize={METASPACE}m",
    ]


def taskmanager_memory(workload: FlinkWorkload) -> list[str]:
    """The JVM memory flags Flink's scripts derive from the TaskManager's memory model."""
    heap = TM_FRAMEWORK_HEAP + workload.taskmanager_heap_mb
    direct = TM_FRAMEWORK_OFF_HEAP + TM_NETWORK
    return [
        f"-Xmx{heap}m",
        f"-Xms{heap}m",
        f"-XX:MaxDirectMemorySize={direct}m",
        f"-XX:MaxMetaspaceSize={METASPACE}m",
    ]


def process_memory_mb(workload: FlinkWorkload, role: str) -> int:
    """A JobManager's or TaskManager's whole process (Flink's total process memory)."""
    if role == "jobmanager":
        return workload.jobmanager_heap_mb + JM_OFF_HEAP + METASPACE + OVERHEAD
    heap = TM_FRAMEWORK_HEAP + workload.taskmanager_heap_mb
    return heap + TM_FRAMEWORK_OFF_HEAP + TM_NETWORK + TM_MANAGED + METASPACE + OVERHEAD


def _java(config_dir: Path, metrics_port: int, memory: list[str]) -> list[str]:
    agent = f"{jmx_agent(kafka_jars())}=127.0.0.1:{metrics_port}:{JMX_RULES}"
    log4j = str(config_dir / "log4j.properties")
    return [java_binary(), *memory, *jvm_options(log4j, agent), "-cp", f"{flink_jars()}/*"]


def jobmanager_process(
    ports: FlinkPorts, workload: FlinkWorkload, config_dir: Path, log: Path
) -> ProcessSpec:
    memory = jobmanager_memory(workload)
    argv = [*_java(config_dir, ports.metrics, memory), ENTRYPOINT, "--configDir", str(config_dir)]
    return ProcessSpec(
        name="jobmanager",
        argv=argv,
        log_path=log,
        ports={"rest": ports.rest, "rpc": ports.rpc, "blob": ports.blob, "metrics": ports.metrics},
        death_signal=signal.SIGTERM,
    )


def taskmanager_process(
    name: str, metrics_port: int, workload: FlinkWorkload, config_dir: Path, log: Path
) -> ProcessSpec:
    memory = taskmanager_memory(workload)
    argv = [*_java(config_dir, metrics_port, memory), TASKMANAGER, "--configDir", str(config_dir)]
    return ProcessSpec(name=name, argv=argv, log_path=log, ports={"metrics": metrics_port})
