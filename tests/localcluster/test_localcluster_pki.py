"""The certificates made with openssl verify against their CA and carry the right names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scalelab.localcluster import layout as L
from scalelab.localcluster.certs import CertSpec, Pki, ensure_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_certificates_chain_to_their_ca_and_name_the_apiserver_addresses(tmp_path: Path) -> None:
    specs = (
        CertSpec("apiserver", "kube-apiserver", server=True, dns_names=("kubernetes",),
                 ip_addresses=(L.NODE_IP, L.KUBERNETES_SERVICE_IP)),
        CertSpec("admin", "kubernetes-admin", "system:masters", client=True),
        CertSpec("front-proxy-client", "front-proxy-client", client=True, issuer="front-proxy-ca"),
    )  # fmt: skip
    pki = Pki(tmp_path / "pki", specs)
    ensure_pki(pki)
    ca, fp = str(pki.cert("ca")), str(pki.cert("front-proxy-ca"))
    assert _openssl("verify", "-CAfile", ca, str(pki.cert("apiserver"))).strip().endswith("OK")
    assert (
        _openssl("verify", "-CAfile", fp, str(pki.cert("front-proxy-client")))
        .strip()
        .endswith("OK")
    )
    with pytest.raises(subprocess.CalledProcessError):
        _openssl("verify", "-CAfile", ca, str(pki.cert("front-proxy-client")))
    text = _openssl("x509", "-in", str(pki.cert("apiserver")), "-noout", "-text")
    assert f"IP Address:{L.NODE_IP}" in text and "DNS:kubernetes" in text
    subject = _openssl("x509", "-in", str(pki.cert("admin")), "-noout", "-subject")
    assert "O = system:masters" in subject and "CN = kubernetes-admin" in subject
    assert (tmp_path / "pki" / "sa.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert pki.key("admin").stat().st_mode & 0o077 == 0


def test_existing_certificates_are_kept(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki", (CertSpec("admin", "kubernetes-admin", client=True),))
    ensure_pki(pki)
    before = pki.cert("admin").read_bytes()
    ensure_pki(pki)
    assert pki.cert("admin").read_bytes() == before
