"""Helm as a subprocess: pinned charts installed with values files scalelab writes."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass

from scalelab.errors import MissingDependencyError
from scalelab.platform.kubernetes.errors import KubernetesError

HELM_HINT = (
    "install Helm 3 (https://helm.sh/docs/intro/install/, e.g. `curl -fsSL "
    "https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash` or "
    "`snap install helm --classic`), or run with --dry-run to get the commands"
)
INSTALL_TIMEOUT = "15m"


class HelmError(KubernetesError):
    """A helm command failed; keeps the command and the end of its output."""

    def __init__(self, command: list[str], returncode: int, output: str):
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(f"`{shlex.join(command)}` failed ({returncode}):\n{output[-2000:]}")


@dataclass(frozen=True)
class Kube:
    """Which cluster helm and kubectl talk to."""

    kubeconfig: str | None = None
    context: str | None = None

    def helm_flags(self) -> list[str]:
        flags = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return flags + (["--kube-context", self.context] if self.context else [])

    def kubectl_flags(self) -> list[str]:
        flags = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return flags + (["--context", self.context] if self.context else [])


@dataclass(frozen=True)
class Chart:
    """A pinned chart: from a repository URL, or an `oci://` reference (repo None)."""

    release: str
    namespace: str
    chart: str
    version: str
    repo: str | None = None

    def install(self, values_file: str, kube: Kube) -> list[str]:
        source = ["--repo", self.repo] if self.repo else []
        return [
            "helm", "upgrade", "--install", self.release, self.chart, *source,
            "--version", self.version, "--namespace", self.namespace, "--create-namespace",
            "--values", values_file, "--wait", "--timeout", INSTALL_TIMEOUT, *kube.helm_flags(),
        ]  # fmt: skip

    def uninstall(self, kube: Kube) -> list[str]:
        return [
            "helm",
            "uninstall",
            self.release,
            "--namespace",
            self.namespace,
            *kube.helm_flags(),
        ]


def find_helm() -> str:
    found = shutil.which("helm")
    if found is None:
        raise MissingDependencyError("helm", HELM_HINT)
    return found


def run(command: list[str]) -> str:
    """Run a helm command (the first word replaced by the helm found on PATH)."""
    argv = [find_helm(), *command[1:]] if command[:1] == ["helm"] else command
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HelmError(command, done.returncode, (done.stdout + done.stderr).strip())
    return done.stdout


def run_uninstall(command: list[str]) -> bool:
    """Uninstall a release; False when there was none."""
    try:
        run(command)
    except HelmError as error:
        if "not found" in error.output:
            return False
        raise
    return True


def script(commands: list[list[str]], before: tuple[str, ...] = ()) -> str:
    """A shell script: shell lines `before`, then the commands (what --dry-run leaves)."""
    lines = ["#!/bin/sh", "# Written by scalelab: what `scalelab cluster ...` runs.", "set -eu", ""]
    lines += [*before, *(shlex.join(command) for command in commands)]
    return "\n".join(lines) + "\n"
