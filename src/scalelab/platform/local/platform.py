"""The embedded default platform: every component is a supervised process on this machine."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from scalelab.errors import ComponentError
from scalelab.platform.base import ComponentLaunch, Endpoints, Platform
from scalelab.platform.local import kafka, prometheus
from scalelab.platform.ports import accepts_connections, choose_port
from scalelab.platform.process import ManagedProcess, ProcessSpec, wait_until
from scalelab.spec.models import ExperimentSpec

BROKER_READY_TIMEOUT = 90.0
PROMETHEUS_READY_TIMEOUT = 30.0
FORCE_WAIT_S = 5.0


class LocalPlatform(Platform):
    """Kafka, Prometheus, the node exporter and scalelab's components as local processes."""

    name = "local"

    def __init__(
        self, spec: ExperimentSpec, run_id: str, run_dir: Path, state_dir: Path, detached: bool
    ):
        self.spec = spec
        self.run_id = run_id
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

    # -- infrastructure -------------------------------------------------------------------
    def start_infrastructure(self) -> Endpoints:
        ports = self.spec.platform.ports
        bootstrap = self.spec.broker.bootstrap
        if self.spec.monitoring.node_exporter:
            self._start_node_exporter(ports.node_exporter)
        if bootstrap is None:
            bootstrap = self._start_broker()
        url = self._start_prometheus(ports.prometheus)
        self.endpoints = Endpoints(bootstrap=bootstrap, prometheus_url=url)
        self._wait_broker(bootstrap)
        self.wait_scraped(PROMETHEUS_READY_TIMEOUT)
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
        spec = kafka.broker_process(
            broker_ports,
            work_dir=self.config,
            data_dir=self._kafka_data_dir(),
            heap_mb=self.spec.broker.heap_mb,
            retention_s=self.spec.broker.retention,
            log=self.logs / "broker.log",
        )
        self._launch(spec)
        self.targets["broker"] = (broker_ports.metrics, {"role": "broker", "run_id": self.run_id})
        return f"127.0.0.1:{broker_ports.client}"

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
            self._wait("broker", lambda: accepts_connections(port), BROKER_READY_TIMEOUT)
        admin = [AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})]
        try:
            self._wait("broker", lambda: _answers_metadata(admin[0]), BROKER_READY_TIMEOUT)
        finally:
            # Freed here, while the broker still runs: a traceback holding this frame would
            # otherwise keep the client until after teardown, where its destroy can hang.
            admin.clear()

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        def check() -> bool:
            self.check_health()
            return ready()

        if not wait_until(check, timeout, interval=0.1):
            proc = self.processes.get(name)
            tail = proc.log_tail() if proc else ""
            raise ComponentError(name, f"not ready after {timeout:g} s", tail)

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
        return {"kafka": kafka.kafka_version(), "prometheus": prometheus.prometheus_version()}

    def is_running(self, name: str) -> bool:
        proc = self.processes.get(name)
        return proc is not None and proc.alive()

    def component_pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items() if proc.alive()}

    def _launch(self, spec: ProcessSpec) -> None:
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
        if self.spec.broker.storage == "fresh":
            shutil.rmtree(self.state / "kafka" / f"data-{self.run_id}", ignore_errors=True)


INFRASTRUCTURE = ("prometheus", "broker", "node-exporter")


def _teardown_order(names: list[str]) -> list[str]:
    components = [n for n in reversed(names) if n not in INFRASTRUCTURE]
    return components + [n for n in INFRASTRUCTURE if n in names]


def _answers_metadata(admin: AdminClient) -> bool:
    try:
        metadata = admin.list_topics(timeout=1.0)
    except Exception:  # noqa: BLE001 - any client error means "not ready yet"
        return False
    return bool(metadata.brokers)
