"""The cluster's certificates, made with the `openssl` command (no Python crypto dependency).

Two self-signed CAs (the cluster CA and the front-proxy CA for the aggregated
metrics API), one key and certificate per identity, and the service-account key.
Keys are ECDSA P-256: quick to make on a loaded machine, accepted everywhere in
Kubernetes. Existing files are kept, so `up` after `down` reuses them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scalelab.localcluster import layout as L

DAYS = 365


@dataclass(frozen=True)
class CertSpec:
    """One certificate: its file name, subject, uses, alternative names and issuer."""

    name: str
    common_name: str
    organization: str | None = None
    server: bool = False
    client: bool = False
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    issuer: str = "ca"

    @property
    def subject(self) -> str:
        org = f"/O={self.organization}" if self.organization else ""
        return f"{org}/CN={self.common_name}"


@dataclass(frozen=True)
class Pki:
    """The certificate set of one cluster, written to `directory`."""

    directory: Path
    specs: tuple[CertSpec, ...] = field(default_factory=lambda: cluster_cert_specs())

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"


def cluster_cert_specs() -> tuple[CertSpec, ...]:
    """Every identity the single-node cluster needs.

    CoreDNS and metrics-server run as host processes with cluster-admin identities
    (group system:masters): they are part of the node's own set-up, like the kubelet.
    """
    apiserver_names = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{L.CLUSTER_DOMAIN}",
        "localhost",
        L.NODE_NAME,
    )
    masters = "system:masters"
    return (
        CertSpec(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns_names=apiserver_names,
            ip_addresses=("127.0.0.1", L.NODE_IP, L.KUBERNETES_SERVICE_IP),
        ),
        CertSpec("apiserver-kubelet-client", "kube-apiserver-kubelet-client", masters, client=True),
        CertSpec("admin", "kubernetes-admin", masters, client=True),
        CertSpec("controller-manager", "system:kube-controller-manager", client=True),
        CertSpec("scheduler", "system:kube-scheduler", client=True),
        CertSpec("kube-proxy", "system:kube-proxy", "system:node-proxier", client=True),
        CertSpec("kubelet", f"system:node:{L.NODE_NAME}", "system:nodes", client=True),
        CertSpec(
            "kubelet-serving",
            f"system:node:{L.NODE_NAME}",
            "system:nodes",
            server=True,
            dns_names=(L.NODE_NAME, "localhost"),
            ip_addresses=(L.NODE_IP, "127.0.0.1"),
        ),
        CertSpec("coredns", "scalelab:coredns", masters, client=True),
        CertSpec("metrics-server-client", "scalelab:metrics-server", masters, client=True),
        CertSpec(
            "metrics-server",
            "metrics-server.kube-system.svc",
            server=True,
            dns_names=("metrics-server.kube-system.svc", "metrics-server.kube-system", "localhost"),
            ip_addresses=(L.NODE_IP, "127.0.0.1"),
        ),
        CertSpec("front-proxy-client", "front-proxy-client", client=True, issuer="front-proxy-ca"),
    )


def extensions(spec: CertSpec) -> str:
    """The openssl `-extfile` text for one certificate (uses and alternative names)."""
    uses = [u for u, on in (("serverAuth", spec.server), ("clientAuth", spec.client)) if on]
    lines = [
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        f"extendedKeyUsage = {', '.join(uses)}",
    ]
    alt = [f"DNS:{n}" for n in spec.dns_names] + [f"IP:{a}" for a in spec.ip_addresses]
    if alt:
        lines.append(f"subjectAltName = {', '.join(alt)}")
    return "\n".join(lines) + "\n"


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    path.chmod(0o600)


def _ensure_ca(pki: Pki, name: str, common_name: str) -> None:
    if pki.cert(name).exists() and pki.key(name).exists():
        return
    _new_key(pki.key(name))
    _openssl(
        "req", "-x509", "-new", "-key", pki.key(name), "-subj", f"/CN={common_name}",
        "-days", str(DAYS * 10), "-out", pki.cert(name),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip


def _ensure_cert(pki: Pki, spec: CertSpec) -> None:
    if pki.cert(spec.name).exists() and pki.key(spec.name).exists():
        return
    _new_key(pki.key(spec.name))
    csr = pki.directory / f"{spec.name}.csr"
    ext = pki.directory / f"{spec.name}.ext"
    ext.write_text(extensions(spec))
    _openssl("req", "-new", "-key", pki.key(spec.name), "-subj", spec.subject, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", pki.cert(spec.issuer), "-CAkey", pki.key(spec.issuer),
        "-CAcreateserial", "-days", str(DAYS), "-extfile", ext, "-out", pki.cert(spec.name),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def ensure_pki(pki: Pki) -> None:
    """Write every missing key and certificate; keep the ones already there."""
    pki.directory.mkdir(parents=True, exist_ok=True)
    _ensure_ca(pki, "ca", "scalelab-local-ca")
    _ensure_ca(pki, "front-proxy-ca", "scalelab-front-proxy-ca")
    for spec in pki.specs:
        _ensure_cert(pki, spec)
    if not pki.key("sa").exists():
        _new_key(pki.key("sa"))
        _openssl("pkey", "-in", pki.key("sa"), "-pubout", "-out", pki.directory / "sa.pub")
