"""Against a real cluster: only when KUBECONFIG points at one (`pytest -m live tests/live`).

The quickstart needs the cluster prepared as docs/kubernetes.md says (Strimzi,
monitoring stack, the image where the nodes can pull it: SCALELAB_IMAGE).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG names no cluster"),
]
pytest.importorskip("kubernetes")

from scalelab.platform.kubernetes import labels, teardown  # noqa: E402
from scalelab.platform.kubernetes.client import connect  # noqa: E402
from scalelab.platform.kubernetes.errors import PrerequisiteError  # noqa: E402
from scalelab.platform.kubernetes.plan import Plan  # noqa: E402
from scalelab.platform.kubernetes.preflight import require_kinds  # noqa: E402
from scalelab.spec.loader import load_spec  # noqa: E402
from scalelab.spec.models import PlatformSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kubernetes.yaml"


def namespace() -> str:
    return f"scalelab-live-{secrets.token_hex(3)}"


def test_apply_wait_and_delete_by_label() -> None:
    cluster = connect(os.environ["KUBECONFIG"], None)
    spec = load_spec(EXAMPLE, [f"platform.namespace={namespace()}"])
    plan = Plan.for_spec(spec, "live-" + secrets.token_hex(4))
    from scalelab.platform.kubernetes import readiness

    try:
        for obj in plan.base_objects():
            cluster.apply(obj)
            cluster.wait_for(obj, readiness.predicate(obj["kind"]), 60)
        assert cluster.list("v1", "ConfigMap", plan.namespace, labels.run_selector(plan.run_id))
    finally:
        errors = teardown.delete_run(cluster, plan.namespace, plan.run_id, timeout=120)
    assert errors == []
    assert cluster.get("v1", "Namespace", plan.namespace) is None


def test_quickstart_runs_on_the_cluster(tmp_path: Path) -> None:
    cluster = connect(os.environ["KUBECONFIG"], None)
    ns = namespace()
    spec = load_spec(EXAMPLE, [f"platform.namespace={ns}"])
    try:
        require_kinds(cluster, Plan.for_spec(spec, "probe"))
    except PrerequisiteError as error:
        pytest.skip(f"cluster not prepared: {error}")
    overrides = ["--set", f"platform.namespace={ns}", "--set", "load.duration=40s"]
    if os.environ.get("SCALELAB_IMAGE") and "kubernetes" in PlatformSpec.model_fields:
        overrides += ["--set", f"platform.kubernetes.image={os.environ['SCALELAB_IMAGE']}"]
    env = {**os.environ, "SCALELAB_RUNS": str(tmp_path / "runs"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "run", str(EXAMPLE), *overrides],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert (run_dir / "qos.parquet").stat().st_size > 0
    assert (run_dir / "summary.json").exists()
    assert any((run_dir / "logs").glob("workers-*.log"))
    selector = labels.run_selector(record["id"])
    for api_version, kind in (
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("kafka.strimzi.io/v1beta2", "Kafka"),
    ):
        assert cluster.list(api_version, kind, ns, selector) == []
    assert cluster.get("v1", "Namespace", ns) is None
