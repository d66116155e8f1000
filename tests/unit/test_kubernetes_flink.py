"""A Flink workload on Kubernetes, rendered and validated offline: the run's own JobManager and
TaskManager Deployments from the image (self-contained), or a FlinkDeployment for the Flink
Kubernetes Operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from scalelab.errors import ConfigError
from scalelab.platform.kubernetes import crds, labels, render, teardown
from scalelab.platform.kubernetes.manifests import flink, flink_operator, own_prometheus
from scalelab.platform.kubernetes.plan import Plan
from scalelab.platform.local import flink as local_flink
from scalelab.spec.checks import check_flink_platform
from scalelab.spec.loader import load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flink-kubernetes.yaml"
RUN_ID = "20260101T000000Z-flink-kubernetes-abc123"
FLINK_IMAGE = "registry.example.org/lab/flink-scalelab:2.0"


def plan(*overrides: str, operator: bool = False) -> Plan:
    spec = load_spec(EXAMPLE, list(overrides))
    return Plan.for_spec(spec, RUN_ID, lambda api_version, kind: operator, 31234)


def named(built: Plan, kind: str, name: str) -> dict[str, Any]:
    (found,) = [
        o for o in built.all_objects() if o["kind"] == kind and o["metadata"]["name"] == name
    ]
    return found


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (only,) = obj["spec"]["template"]["spec"]["containers"]
    return only


def config_of(built: Plan) -> dict[str, Any]:
    data = named(built, "ConfigMap", flink.CONFIGMAP)["data"]
    return dict(YAML(typ="safe").load(data["config.yaml"]))


def test_the_example_loads_and_renders_valid_objects(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLE)
    assert check_flink_platform(spec) == []
    written = render.render(spec, tmp_path, RUN_ID)  # raises ManifestError on a problem
    names = [p.name for p in written]
    assert any("deployment-jobmanager" in n for n in names)
    assert any("deployment-taskmanager" in n for n in names)
    assert not any("workers" in n for n in names), "a Flink run has no inference workers"
    assert render.check(plan().all_objects()) == []


def test_jobmanager_service_and_deployments() -> None:
    built = plan("workload.taskmanagers=2", "workload.slots_per_taskmanager=3")
    ports = {p["name"]: p["port"] for p in named(built, "Service", "jobmanager")["spec"]["ports"]}
    assert ports == {"rest": 8081, "rpc": 6123, "blob": 6124}
    jm = named(built, "Deployment", flink.JOBMANAGER)
    tm = named(built, "Deployment", flink.TASKMANAGER)
    assert jm["spec"]["replicas"] == 1 and tm["spec"]["replicas"] == 2
    assert config_of(built)["taskmanager.numberOfTaskSlots"] == "3"
    for obj, role in ((jm, "jobmanager"), (tm, "taskmanager")):
        pod = obj["spec"]["template"]
        assert pod["metadata"]["labels"][labels.COMPONENT] == role
        assert pod["metadata"]["annotations"][labels.RUN_ID_ANNOTATION] == RUN_ID
        main = container(obj)
        assert main["image"] == built.settings.image
        assert main["imagePullPolicy"] == "IfNotPresent"
        assert {"name": "metrics", "containerPort": 9249, "protocol": "TCP"} in main["ports"]
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        memory = f"{local_flink.process_memory_mb(built.flink, role)}Mi"  # type: ignore[arg-type]
        assert main["resources"]["limits"]["memory"] == memory


def test_addresses_are_in_the_cluster_and_the_rest_is_the_local_platforms() -> None:
    built = plan()
    config = config_of(built)
    assert config["jobmanager.rpc.address"] == f"jobmanager.{built.namespace}.svc"
    assert config["jobmanager.bind-host"] == config["rest.bind-address"] == "0.0.0.0"
    assert not any("127.0.0.1" in value for value in config.values())
    shared = local_flink.cluster_config(built.flink, flink.DATA)  # type: ignore[arg-type]
    assert {k: config[k] for k in shared} == shared  # memory, scheduler, restarts, JMX
    assert config["execution.checkpointing.dir"] == "file:///data/flink/checkpoints"
    assert config["state.storage.fs.memory-threshold"] == flink.INLINE_STATE


def test_the_pods_run_java_as_the_local_platform_does() -> None:
    built = plan()
    wl = built.flink
    assert wl is not None
    jm = container(named(built, "Deployment", flink.JOBMANAGER))["command"][-1]
    tm = container(named(built, "Deployment", flink.TASKMANAGER))["command"][-1]
    for flag in local_flink.jobmanager_memory(wl) + local_flink.JAVA_OPENS:
        assert f'"{flag}"' in jm
    for flag in local_flink.taskmanager_memory(wl):
        assert f'"{flag}"' in tm
    assert jm.rstrip().endswith(f"{local_flink.ENTRYPOINT} --configDir /etc/flink")
    assert f"{local_flink.TASKMANAGER} --configDir /etc/flink" in tm
    assert '"-Dtaskmanager.host=$POD_IP"' in tm  # the JobManager reaches it by its pod IP
    assert "-javaagent:$AGENT=9249:/etc/flink/jmx.yaml" in tm
    rules = named(built, "ConfigMap", flink.CONFIGMAP)["data"]["jmx.yaml"]
    assert rules == local_flink.JMX_RULES.read_text()


def test_the_run_prometheus_scrapes_and_names_the_flink_pods() -> None:
    components = dict((c, r) for r, c in own_prometheus.POD_COMPONENTS)
    assert components["jobmanager"] == "jobmanager-.+"
    assert components["taskmanager"] == "taskmanager-.+"
    assert plan().components == ("tracker", "producer")
    assert plan().worker_replicas == 0


def test_every_flink_object_is_deleted_by_the_run_label() -> None:
    deleted = {kind for group in teardown.DELETE_ORDER for _, kind in group}
    for built in (plan(), plan(f"platform.kubernetes.flink.image={FLINK_IMAGE}", operator=True)):
        for obj in built.flink_objects():
            assert obj["metadata"]["labels"][labels.RUN_ID] == built.run_label
            assert obj["kind"] in deleted, obj["kind"]


def test_auto_picks_the_operator_only_with_its_crd_and_an_image() -> None:
    assert plan().flink_mode == "scalelab"
    assert plan(operator=True).flink_mode == "scalelab"  # no Flink distribution image
    with_image = plan(f"platform.kubernetes.flink.image={FLINK_IMAGE}", operator=True)
    assert with_image.flink_mode == "operator"
    forced = plan("platform.kubernetes.flink.mode=scalelab", operator=True)
    assert forced.flink_mode == "scalelab"


def test_operator_mode_without_an_image_fails_before_anything_is_applied() -> None:
    with pytest.raises(ConfigError, match="flink.image"):
        plan("platform.kubernetes.flink.mode=operator")


def test_the_flink_deployment_is_a_valid_standalone_session_cluster() -> None:
    built = plan(
        f"platform.kubernetes.flink.image={FLINK_IMAGE}",
        "workload.taskmanagers=2",
        "platform.kubernetes.kafka.mode=scalelab",
        "platform.kubernetes.monitoring.mode=kube-prometheus-stack",
        operator=True,
    )
    objects = built.flink_objects()
    assert render.check(objects) == []
    (deployment,) = [o for o in objects if o["kind"] == flink_operator.KIND]
    assert crds.check_custom(deployment) == []
    spec = deployment["spec"]
    assert spec["image"] == FLINK_IMAGE and spec["mode"] == "standalone"
    assert "job" not in spec  # a session cluster: the orchestrator submits over REST
    assert spec["taskManager"]["replicas"] == 2
    config = spec["flinkConfiguration"]
    assert config["metrics.reporter.prom.port"] == "9249"
    assert "metrics.reporter.jmx.factory.class" not in config
    assert config["taskmanager.memory.task.heap.size"] == "192m"
    for role in ("jobManager", "taskManager"):
        template = spec[role]["podTemplate"]
        component = "jobmanager" if role == "jobManager" else "taskmanager"
        assert template["metadata"]["labels"][labels.COMPONENT] == component
        (main,) = template["spec"]["containers"]
        assert main["name"] == flink_operator.MAIN_CONTAINER
    monitors = [o for o in objects if o["kind"] == "PodMonitor"]
    assert len(monitors) == 2  # kube-prometheus-stack scrapes the reporter's port
    assert {
        o["kind"]
        for o in plan(
            f"platform.kubernetes.flink.image={FLINK_IMAGE}",
            "platform.kubernetes.monitoring.mode=scalelab",
            operator=True,
        ).flink_objects()
    } == {"ServiceAccount", flink_operator.KIND}


def test_a_misspelt_flink_deployment_field_is_caught() -> None:
    built = plan(f"platform.kubernetes.flink.image={FLINK_IMAGE}", operator=True)
    deployment = flink_operator.flink_deployment(built, built.flink)  # type: ignore[arg-type]
    deployment["spec"]["taskManager"]["replica"] = 1
    assert crds.check_custom(deployment) == [
        "FlinkDeployment/flink: spec.taskManager.replica: unknown field"
    ]


def test_hpa_autoscaling_is_refused_for_a_flink_run() -> None:
    with pytest.raises(ConfigError, match="inference workers"):
        plan("platform.kubernetes.autoscaling.enabled=true")


def test_flink_operator_install_dry_run_writes_the_pinned_chart(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from scalelab.cli import cluster_cmd

    app = typer.Typer()
    app.add_typer(cluster_cmd.app, name="cluster")
    args = ["cluster", "flink-operator", "install", "--dry-run", "-o", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--spec", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    script = (tmp_path / "install-flink-operator.sh").read_text()
    assert "helm upgrade --install flink-kubernetes-operator flink-kubernetes-operator" in script
    assert "--repo https://downloads.apache.org/flink/flink-kubernetes-operator-1.13.0/" in script
    assert "--version 1.13.0 --namespace flink-operator" in script
    values = YAML(typ="safe").load((tmp_path / "values-flink-operator.yaml").read_text())
    assert values == {"watchNamespaces": [], "webhook": {"create": False}}


def test_operator_mode_fails_before_anything_is_applied_without_the_crd() -> None:
    from scalelab.platform.kubernetes.errors import PrerequisiteError
    from scalelab.platform.kubernetes.flink_operator_ops import require_operator

    class NoOperator:
        def has_kind(self, api_version: str, kind: str) -> bool:
            return False

    wanted = plan(
        "platform.kubernetes.flink.mode=operator", f"platform.kubernetes.flink.image={FLINK_IMAGE}"
    )
    with pytest.raises(PrerequisiteError, match="flink-operator install"):
        require_operator(NoOperator(), wanted)  # type: ignore[arg-type]
    require_operator(NoOperator(), plan())  # type: ignore[arg-type]  # own Deployments: fine


def test_the_join_is_fed_by_the_sensor_producer() -> None:
    """The join reads `<sensor>;<reading>` records: its producer pod runs
    components/sensors.py, as the local platform does; the frames job keeps the producer."""

    def producer_command(built: Plan) -> list[str]:
        job = next(o for o in built.all_objects() if o["kind"] == "Job")
        return list(job["spec"]["template"]["spec"]["containers"][0]["args"])

    join = plan("workload.job=join")
    assert "scalelab.components.sensors" in producer_command(join)
    assert "scalelab.components.producer" in producer_command(plan())
