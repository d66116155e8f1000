"""The embedded default platform: every component is a supervised process on this machine."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from scalelab.chaos.proxy import TcpProxy
from scalelab.chaos.spec import NETWORK
from scalelab.errors import ComponentError
from scalelab.platform.base import ComponentLaunch, Endpoints, Platform
from scalelab.platform.local import flink, kafka, prometheus
from scalelab.platform.local.flink_rest import FlinkRest
from scalelab.platform.ports import accepts_connections, choose_port
from scalelab.platform.process import ManagedProcess, ProcessSpec, wait_until
from scalelab.spec.models import ExperimentSpec, FlinkWorkload

BROKER_READY_TIMEOUT = 90.0
PROMETHEUS_READY_TIMEOUT = 30.0
FLINK_READY_TIMEOUT = 120.0
FORCE_WAIT_S = 5.0


class LocalPlatform(Platform):
    """Kafka, Prometheus, the node exporter and scalelab's components as local processes."""

    name = "local"

    def __init__(
        self, spec: ExperimentSpec, run_id: str, run_dir: Path, state_dir: Path, detached: bool
    ):
        self.spec = spec
        self.run_id = run_id
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.config = run_dir / "config"
        self.state = state_dir
        self.detached = detached
        self.processes: dict[str, ManagedProcess] = {}
        self.expected_exits: set[str] = set()
        self.may_finish: set[str] = set()
        self.targets: dict[str, tuple[int, dict[str, str]]] = {}
        self.taken_ports: set[int] = set()
        self.endpoints: Endpoints | None = None
        self.flink_url: str | None = None
        self.taskmanagers: list[str] = []  # live TaskManager names, in start order
        self.attached: set[str] = set()  # targets of a stack `scalelab up` left running
        self.stack_pids: dict[str, int] = {}  # and its processes, whose CPU the run counts
        self.proxy: TcpProxy | None = None  # before the broker when the spec has network faults

    # -- infrastructure -------------------------------------------------------------------
    def start_infrastructure(self) -> Endpoints:
        ports = self.spec.platform.ports
        bootstrap = self.spec.broker.bootstrap
        if self.spec.monitoring.node_exporter:
            self._start_node_exporter(ports.node_exporter)
        if bootstrap is None:
            bootstrap = self._start_broker()
        if isinstance(self.spec.workload, FlinkWorkload):
            self._start_flink(self.spec.workload)
        url = self._start_prometheus(ports.prometheus)
        extra = {"flink": self.flink_url} if self.flink_url else {}
        self.endpoints = Endpoints(bootstrap=bootstrap, prometheus_url=url, extra=extra)
        self._wait_broker(bootstrap)
        if isinstance(self.spec.workload, FlinkWorkload):
            self._wait_flink(self.spec.workload.taskmanagers)
        self.wait_scraped(PROMETHEUS_READY_TIMEOUT)
        return self.endpoints

    def attach_infrastructure(self, kept: dict[str, Any]) -> Endpoints:
        """Use the broker, Prometheus and node exporter `scalelab up` left running.

        This run's components join that Prometheus's targets file (in the `up` run's
        config directory) and leave it at teardown; the stack itself is not touched.
        """
        self.config = Path(kept["run_dir"]) / "config"
        self.targets = prometheus.read_targets(self.config / "targets.json")
        self.attached = set(self.targets)
        self.stack_pids = {str(k): int(v) for k, v in (kept.get("processes") or {}).items()}
        urls = dict(kept["endpoints"])
        bootstrap, url = urls.pop("bootstrap"), urls.pop("prometheus")
        self.endpoints = Endpoints(bootstrap=bootstrap, prometheus_url=url, extra=urls)
        self._wait_broker(bootstrap)
        return self.endpoints

    def _start_node_exporter(self, fixed: int) -> None:
        port = choose_port("node-exporter", fixed, self.taken_ports)
        self._launch(prometheus.node_exporter_process(port, self.logs / "node-exporter.log"))
        self.targets["node-exporter"] = (port, {"role": "host", "run_id": self.run_id})

    def _start_broker(self) -> str:
        ports = self.spec.platform.ports
        broker_ports = kafka.BrokerPorts(
            client=choose_port("broker", ports.broker, self.taken_ports),
            controller=choose_port("broker controller", ports.controller, self.taken_ports),
            metrics=choose_port("broker metrics", ports.broker_metrics, self.taken_ports),
        )
        if any(fault.kind in NETWORK for fault in self.spec.chaos):
            # Every client reaches the broker through the proxy (it is the advertised
            # listener), so a network fault sits between every component and the broker.
            self.proxy = TcpProxy(("127.0.0.1", broker_ports.client)).start()
        advertised = self.proxy.port if self.proxy else None
        spec = kafka.broker_process(
            broker_ports,
            work_dir=self.config,
            data_dir=self._kafka_data_dir(),
            heap_mb=self.spec.broker.heap_mb,
            retention_s=self.spec.broker.retention,
            log=self.logs / "broker.log",
            advertised=advertised,
        )
        self._launch(spec)
        self.targets["broker"] = (broker_ports.metrics, {"role": "broker", "run_id": self.run_id})
        return f"127.0.0.1:{advertised or broker_ports.client}"

    # -- Flink ----------------------------------------------------------------------------
    def _start_flink(self, workload: FlinkWorkload) -> None:
        """A JobManager and the TaskManagers, sharing one config in the run's config dir."""
        ports = flink.FlinkPorts(
            rest=choose_port("flink rest", 0, self.taken_ports),
            rpc=choose_port("flink rpc", 0, self.taken_ports),
            blob=choose_port("flink blob", 0, self.taken_ports),
            metrics=choose_port("jobmanager metrics", 0, self.taken_ports),
        )
        data = self._flink_data_dir()
        settings = flink.flink_config(ports, workload, data)
        config = flink.write_config(self.config / "flink", settings)
        self._launch(
            flink.jobmanager_process(ports, workload, config, self.logs / "jobmanager.log")
        )
        self.targets["jobmanager"] = (ports.metrics, {"role": "flink", "run_id": self.run_id})
        for index in range(workload.taskmanagers):
            self.start_taskmanager(f"taskmanager-{index}")
        self.flink_url = f"http://127.0.0.1:{ports.rest}"

    def start_taskmanager(self, name: str) -> None:
        """Start a TaskManager (also a replacement for a killed one, as a Deployment would)."""
        assert isinstance(self.spec.workload, FlinkWorkload)
        port = choose_port(f"{name} metrics", 0, self.taken_ports)
        config = self.config / "flink"
        log = self.logs / f"{name}.log"
        self._launch(flink.taskmanager_process(name, port, self.spec.workload, config, log))
        self.taskmanagers.append(name)
        self.targets[name] = (port, {"role": "flink", "run_id": self.run_id})
        if (self.config / "targets.json").exists():
            prometheus.write_targets(self.config / "targets.json", self.targets)

    def kill_taskmanager(self, index: int) -> tuple[str, str]:
        """SIGKILL the index-th live TaskManager and start a replacement; returns both names."""
        victim = self.taskmanagers[index]
        self.kill_component(victim)
        self.taskmanagers.remove(victim)
        self.targets.pop(victim, None)
        generation = sum(1 for name in self.processes if name.startswith("taskmanager-"))
        replacement = f"taskmanager-{generation}"
        self.start_taskmanager(replacement)
        return victim, replacement

    def _wait_flink(self, taskmanagers: int) -> None:
        """Ready for real: the REST API answers and every TaskManager has registered."""
        assert self.flink_url is not None
        rest = FlinkRest(self.flink_url)
        try:
            self._wait(
                "jobmanager", lambda: rest.has_taskmanagers(taskmanagers), FLINK_READY_TIMEOUT
            )
        finally:
            rest.close()

    def _flink_data_dir(self) -> Path:
        """Checkpoints, savepoints, blobs and temp files of this run's cluster."""
        data = self.state / "flink" / f"data-{self.run_id}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        return data

    def _kafka_data_dir(self) -> Path:
        if self.spec.broker.storage == "reuse":
            return self.state / "kafka" / "data"
        fresh = self.state / "kafka" / f"data-{self.run_id}"
        shutil.rmtree(fresh, ignore_errors=True)
        return fresh

    def _start_prometheus(self, fixed: int) -> str:
        port = choose_port("prometheus", fixed, self.taken_ports)
        self.config.mkdir(parents=True, exist_ok=True)
        targets_file = self.config / "targets.json"
        self.targets["prometheus"] = (port, {"role": "monitoring", "run_id": self.run_id})
        prometheus.write_targets(targets_file, self.targets)
        config = self.config / "prometheus.yml"
        config.write_text(
            prometheus.prometheus_config(self.spec.monitoring.scrape_interval, targets_file)
        )
        spec = prometheus.prometheus_process(
            port,
            config,
            self.state / "prometheus" / "data",  # kept across runs, for re-export
            self.spec.monitoring.retention,
            self.logs / "prometheus.log",
        )
        self._launch(spec)
        url = f"http://127.0.0.1:{port}"
        self._wait("prometheus", lambda: prometheus.is_ready(url), PROMETHEUS_READY_TIMEOUT)
        return url

    def _wait_broker(self, bootstrap: str) -> None:
        port = int(bootstrap.rsplit(":", 1)[1])
        if "broker" in self.processes:
            listening = "accepts connections"
            self._wait("broker", lambda: accepts_connections(port), BROKER_READY_TIMEOUT, listening)
        admin = [AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})]
        try:
            ready = "ready (answers metadata)"
            self._wait("broker", lambda: _answers_metadata(admin[0]), BROKER_READY_TIMEOUT, ready)
        finally:
            # Freed here, while the broker still runs: a traceback holding this frame would
            # otherwise keep the client until after teardown, where its destroy can hang.
            admin.clear()

    def _wait(
        self, name: str, ready: Callable[[], bool], timeout: float, what: str = "ready"
    ) -> None:
        def check() -> bool:
            self.check_health()
            return ready()

        began = time.monotonic()
        if not wait_until(check, timeout, interval=0.1):
            proc = self.processes.get(name)
            tail = proc.log_tail() if proc else ""
            raise ComponentError(name, f"not ready after {timeout:g} s", tail)
        self.report(f"{name}: {what} in {time.monotonic() - began:.1f} s")

    def wait_scraped(self, timeout: float) -> None:
        assert self.endpoints is not None
        url = self.endpoints.prometheus_url
        expected = set(self.targets)
        missing: set[str] = set(expected)

        def all_scraped() -> bool:
            nonlocal missing
            self.check_health()
            missing = prometheus.unscraped_targets(url, expected)
            return not missing

        if not wait_until(all_scraped, timeout, interval=0.2):
            raise ComponentError("prometheus", f"targets never scraped: {sorted(missing)}")
        self.report(f"prometheus: scraped {len(expected)} targets")

    # -- components -----------------------------------------------------------------------
    def start_component(self, launch: ComponentLaunch) -> None:
        port = choose_port(launch.name, 0, self.taken_ports)
        argv = [sys.executable, "-m", launch.module, *launch.args, "--metrics-port", str(port)]
        env = {**launch.env, "PYTHONUNBUFFERED": "1"}
        spec = ProcessSpec(launch.name, argv, self.logs / f"{launch.name}.log", env=env)
        spec.ports["metrics"] = port
        self._launch(spec)
        if launch.scrape:
            self.targets[launch.name] = (port, {"role": launch.role, "run_id": self.run_id})
            prometheus.write_targets(self.config / "targets.json", self.targets)

    def stop_component(self, name: str, timeout: float = 30.0) -> int | None:
        proc = self.processes.get(name)
        if proc is None:
            return None
        self.expected_exits.add(name)
        proc.stop(timeout)
        return proc.exit_code()

    def kill_component(self, name: str) -> None:
        proc = self.processes[name]
        self.expected_exits.add(name)
        if proc.popen is not None:
            proc.popen.kill()
            proc.popen.wait()

    def mark_may_finish(self, name: str) -> None:
        """A component that ends on its own (the producer): exit code 0 is not a failure."""
        self.may_finish.add(name)

    def check_health(self) -> None:
        for name, proc in self.processes.items():
            code = proc.exit_code()
            if code is None or name in self.expected_exits:
                continue
            if code == 0 and name in self.may_finish:
                continue
            raise ComponentError(name, f"exited with code {code}", proc.log_tail())

    def versions(self) -> dict[str, str]:
        found = {"kafka": kafka.kafka_version(), "prometheus": prometheus.prometheus_version()}
        if isinstance(self.spec.workload, FlinkWorkload):
            found["flink"] = flink.flink_version()
        return found

    def is_running(self, name: str) -> bool:
        proc = self.processes.get(name)
        return proc is not None and proc.alive()

    def component_pids(self) -> dict[str, int]:
        own = {name: proc.pid for name, proc in self.processes.items() if proc.alive()}
        return {**self.stack_pids, **own}

    def read_result(self, name: str, file: str) -> bytes | None:
        """Local components write their results into the run directory itself."""
        try:
            return (self.run_dir / file).read_bytes()
        except FileNotFoundError:
            return None

    def _launch(self, spec: ProcessSpec) -> None:
        self.report(f"{spec.name}: starting")
        proc = ManagedProcess(spec, self.state / "pids", self.run_id, self.detached)
        self.processes[spec.name] = proc
        proc.start()

    # -- teardown -------------------------------------------------------------------------
    def force_stop(self) -> bool:
        """SIGKILL every process group still running (a second Ctrl-C); once they are dead,
        their pid files go too, so nothing is left even if the teardown never comes."""
        procs = list(self.processes.values())
        for proc in procs:
            proc.kill()
        wait_until(lambda: all(proc.gone() for proc in procs), FORCE_WAIT_S)
        for proc in procs:
            if proc.gone():
                proc.pid_path.unlink(missing_ok=True)
        return all(proc.gone() for proc in procs)

    def teardown(self) -> None:
        """Stop components first, then Prometheus, the broker and the node exporter."""
        order = _teardown_order(list(self.processes))
        for name in order:
            self.expected_exits.add(name)
            self.processes[name].stop()
        if self.attached:
            kept = {name: self.targets[name] for name in self.attached}
            prometheus.write_targets(self.config / "targets.json", kept)
        if self.proxy is not None:
            self.proxy.close()
        if self.spec.broker.storage == "fresh":
            shutil.rmtree(self.state / "kafka" / f"data-{self.run_id}", ignore_errors=True)
        shutil.rmtree(self.state / "flink" / f"data-{self.run_id}", ignore_errors=True)


INFRASTRUCTURE = ("prometheus", "broker", "node-exporter")


def _teardown_order(names: list[str]) -> list[str]:
    """scalelab's components, then Flink (TaskManagers before the JobManager), then the rest."""
    components = [n for n in reversed(names) if n not in INFRASTRUCTURE and not _is_flink(n)]
    cluster = [n for n in reversed(names) if _is_flink(n)]
    return components + cluster + [n for n in INFRASTRUCTURE if n in names]


def _is_flink(name: str) -> bool:
    return name == "jobmanager" or name.startswith("taskmanager-")


def _answers_metadata(admin: AdminClient) -> bool:
    try:
        metadata = admin.list_topics(timeout=1.0)
    except Exception:  # noqa: BLE001 - any client error means "not ready yet"
        return False
    return bool(metadata.brokers)
